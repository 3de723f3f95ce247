"""The flood network's fitted join to the calibrated confidence (`fit-flood-join`)."""

import json

import numpy as np
import pytest
import rasterio

from metaflood.core.errors import InputError
from metaflood.core.hashing import file_sha256
from metaflood.flood.calibrate import (
    FLOOD_FIELDS,
    NETWORK_FIELD,
    calibrate_network_join,
    load_dump,
)
from metaflood.flood.change import NETWORK_NODATA, NETWORK_SHA256_TAG, joined_probability
from metaflood.flood.confidence import (
    JOIN_FEATURES,
    NETWORK_JOIN,
    flood_probability,
    load_calibration,
)
from tests.flood.test_change import run_change
from tests.flood.test_confidence import synthetic_event
from tests.helpers.flood_inputs import FLOOD, write_inputs, write_network


def _dump(path, seed: int = 8, network: bool = True):
    """A benchmark-real dump of one synthetic event cut into eight samples, with a false
    alarm the calibrated evidence makes (new water and a SAR flood signal on dry land)
    that the network, sure elsewhere too, does not."""
    event = synthetic_event(seed)
    rng = np.random.default_rng(seed)
    evidence = event.evidence
    evidence.water_post[80:110, 30:90] = 0.95
    evidence.sar[80:110, 30:90] = 1  # FLOOD_SIGNAL
    evidence.ratio_margin_db[80:110, 30:90] = -5.0
    evidence.water_margin_db[80:110, 30:90] = -6.0
    percent = np.where(event.flooded, rng.integers(70, 100, event.flooded.shape), 0)
    percent = np.where(~event.flooded, rng.integers(0, 30, event.flooded.shape), percent)
    percent[:, :5] = NETWORK_NODATA  # where the network says nothing
    dump = {f"flood_{f}": getattr(evidence, f).ravel() for f in FLOOD_FIELDS}
    dump["flood_label"] = event.flooded.ravel().astype(np.uint8)
    dump["flood_sample"] = np.repeat(np.arange(8), event.flooded.size // 8)
    if network:
        dump[NETWORK_FIELD] = percent.astype(np.uint8).ravel()
    np.savez(path, **dump)
    return path


def _network_file(path, content: bytes = b"weights of one flood network"):
    path.write_bytes(content)
    return path


def test_the_fitted_join_drops_the_false_alarm_the_higher_of_the_two_keeps(tmp_path):
    dump = _dump(tmp_path / "ombria_validation.npz")
    events = load_dump(dump)
    assert all(np.isnan(e.network).any() and np.nanmax(e.network) <= 1 for e in events)
    network = _network_file(tmp_path / "flood.pt")
    out = tmp_path / "cal.json"
    calibration = calibrate_network_join([dump], network, out)
    join = calibration[NETWORK_JOIN]
    assert join["features"] == list(JOIN_FEATURES)
    assert join["network_sha256"] == file_sha256(network)
    by_cut = join["leave_one_event_out"]["flood_iou_by_cut"]
    assert list(by_cut) == ["20", "25", "30", "35", "40", "45", "50"]
    # Scored on parts of the dump each fit did not see, on the same pixels.
    iou = by_cut["50"]
    assert iou["fitted"] > iou["higher"] + 0.1 and iou["fitted"] > iou["calibrated"]
    assert set(iou) == {"calibrated", "higher", "fitted", "network"}
    # The base variants are the shipped calibration's, untouched.
    shipped = load_calibration()
    assert load_calibration(out)["variants"] == shipped["variants"]
    # Where the network says nothing, the calibrated probability stands.
    event = events[0]
    probability = flood_probability(event.evidence, shipped)
    percent = np.where(np.isnan(event.network), NETWORK_NODATA, np.rint(event.network * 100))
    joined = joined_probability(
        probability, percent, join=join, optical_post=event.evidence.optical_post
    )
    unknown = np.isnan(event.network)
    assert unknown.any()
    np.testing.assert_array_equal(joined[unknown], probability[unknown])
    assert np.isfinite(joined[~unknown & np.isfinite(probability)]).all()


def test_a_dump_without_the_network_and_a_join_of_other_features_are_refused(tmp_path):
    dump = _dump(tmp_path / "plain.npz", network=False)
    network = _network_file(tmp_path / "flood.pt")
    with pytest.raises(InputError, match="no flood network probability in this dump"):
        calibrate_network_join([dump], network, tmp_path / "cal.json")
    assert not (tmp_path / "cal.json").exists()
    with pytest.raises(InputError, match="flood.missing.pt: flood network checkpoint not found"):
        calibrate_network_join(
            [_dump(tmp_path / "d.npz")], tmp_path / "flood.missing.pt", tmp_path / "c.json"
        )
    calibration = load_calibration()
    calibration[NETWORK_JOIN] = {"features": ["calibrated"]}
    (tmp_path / "old.json").write_text(json.dumps(calibration))
    with pytest.raises(InputError, match="network_join was fitted on other features"):
        load_calibration(tmp_path / "old.json")


def test_the_change_stage_applies_the_join_only_for_the_network_it_was_fitted_for(tmp_path):
    """network.tif carries its checkpoint's sha256; a join fitted for another network is
    refused naming both, and one fitted for it is applied and said so in the product."""
    paths = write_inputs(tmp_path / "in")
    network = np.zeros((64, 64), np.uint8)
    network[FLOOD] = 95
    checkpoint = _network_file(tmp_path / "flood.pt")
    paths["network"] = write_network(
        tmp_path / "in" / "network.tif", network, {NETWORK_SHA256_TAG: file_sha256(checkpoint)}
    )
    calibration = calibrate_network_join(
        [_dump(tmp_path / "d.npz")], checkpoint, tmp_path / "cal.json"
    )
    out = tmp_path / "joined"
    run_change(paths, out, network=paths["network"], calibration=tmp_path / "cal.json")
    with rasterio.open(out / "confidence.tif") as src:
        assert "joined to the flood network's probability by a fit" in src.tags()["definition"]
        assert (src.read(1)[FLOOD] >= 50).mean() > 0.9
    calibration[NETWORK_JOIN]["network_sha256"] = "0" * 64
    (tmp_path / "other.json").write_text(json.dumps(calibration))
    with pytest.raises(InputError, match=r"network.tif: written by the flood network with sha256"):
        run_change(
            paths, tmp_path / "other", network=paths["network"], calibration=tmp_path / "other.json"
        )
    assert not (tmp_path / "other" / "extent.tif").exists()
