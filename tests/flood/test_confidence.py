import json

import numpy as np
import pytest
import rasterio

from metaflood.core.errors import InputError
from metaflood.core.reliability import high_confidence_precision, reliability_table
from metaflood.flood.calibrate import CalibrationEvent, fit_models, leave_one_event_out
from metaflood.flood.confidence import (
    CONFIDENCE_NODATA,
    VARIANTS,
    Evidence,
    feature_matrix,
    flood_probability,
    load_calibration,
    read_evidence,
    to_percent,
)
from metaflood.flood.sar_change import DARK_BEFORE, EVIDENCE_NODATA, FLOOD_SIGNAL, NO_SIGNAL
from tests.helpers.flood_inputs import FLOOD, write_inputs


def synthetic_event(seed: int, size: int = 120) -> CalibrationEvent:
    """Truth, and two noisy lines of evidence about it: land cover and SAR."""
    rng = np.random.default_rng(seed)
    flooded = np.zeros((size, size), bool)
    flooded[20:70, 30:90] = True
    water_pre = np.clip(rng.beta(1, 12, flooded.shape), 0, 1)
    water_post = np.where(flooded, rng.beta(8, 2, flooded.shape), rng.beta(1, 8, flooded.shape))
    sar = np.where(
        rng.random(flooded.shape) < np.where(flooded, 0.85, 0.02), FLOOD_SIGNAL, NO_SIGNAL
    )
    sar[:10] = DARK_BEFORE
    sar[-5:] = EVIDENCE_NODATA
    ratio = np.where(sar == FLOOD_SIGNAL, -5.0, 4.0) + rng.normal(0, 2, flooded.shape)
    water = np.where(sar == FLOOD_SIGNAL, -6.0, 4.0) + rng.normal(0, 2, flooded.shape)
    evidence = Evidence(
        water_pre=water_pre,
        water_post=water_post,
        optical_post=rng.random(flooded.shape) < 0.4,
        sar=sar.astype(np.uint8),
        ratio_margin_db=ratio,
        water_margin_db=water,
    )
    return CalibrationEvent(f"e{seed}", evidence, flooded, np.ones(flooded.shape, bool))


def test_feature_matrix_has_the_variant_columns():
    event = synthetic_event(0)
    where = event.known & event.evidence.has_sar
    X = feature_matrix(event.evidence, where, "water_and_sar_change")
    assert X.shape == (where.sum(), len(VARIANTS["water_and_sar_change"]))
    assert np.isfinite(X).all()
    X = feature_matrix(event.evidence, where, "water_only")
    assert X.shape[1] == len(VARIANTS["water_only"])


def test_fitted_confidence_is_calibrated_on_an_unseen_event():
    events = [synthetic_event(s) for s in (1, 2, 3)]
    model = {"variants": fit_models(events)}
    test = synthetic_event(4)
    probability = flood_probability(test.evidence, model)
    assert np.isfinite(probability).all()
    percent = to_percent(probability)
    for row in reliability_table(percent, test.flooded):
        if row["pixels"] > 400:
            assert abs(row["observed_flooded_percent"] - row["mean_confidence"]) < 12, row
    high = high_confidence_precision(percent, test.flooded)
    assert high["pixels"] > 1000 and high["precision"] >= 0.95
    # Agreement of both lines of evidence is worth more than land cover alone.
    both = test.flooded & (test.evidence.sar == FLOOD_SIGNAL)
    lc_only = test.flooded & (test.evidence.sar == NO_SIGNAL)
    assert probability[both].mean() > probability[lc_only].mean()


def test_leave_one_event_out_scores_every_event():
    events = [synthetic_event(s) for s in (5, 6, 7)]
    result = leave_one_event_out(events)
    assert set(result["per_event"]) == {"e5", "e6", "e7"}
    assert sum(r["pixels"] for r in result["reliability"]) == sum(e.known.sum() for e in events)
    assert result["high_confidence"]["precision"] >= 0.95


def test_to_percent_marks_unknown_as_nodata():
    out = to_percent(np.array([0.0, 0.804, 1.0, np.nan]))
    assert out.tolist() == [0, 80, 100, CONFIDENCE_NODATA]


def test_reliability_table_bins():
    percent = np.array([5, 15, 15, 95, 100])
    flooded = np.array([False, True, False, True, True])
    table = reliability_table(percent, flooded)
    assert len(table) == 10
    assert table[1] == {
        "confidence": "10-20",
        "pixels": 2,
        "mean_confidence": 15.0,
        "observed_flooded_percent": 50.0,
    }
    assert table[9]["pixels"] == 2  # 100 falls in the last bin


def test_packaged_calibration_is_complete_and_fitted_on_held_out_events():
    calibration = load_calibration()
    assert set(calibration["variants"]) == set(VARIANTS)
    assert "demo" not in calibration["fitted_on"]["events"]
    held_out = calibration["leave_one_event_out"]["high_confidence"]
    assert held_out["precision"] >= 0.95


def test_a_calibration_fitted_on_other_features_is_refused(tmp_path):
    calibration = load_calibration()
    calibration["variants"]["water_only"]["features"] = ["something", "else"]
    path = tmp_path / "cal.json"
    path.write_text(json.dumps(calibration))
    with pytest.raises(InputError, match="refit it"):
        load_calibration(path)
    path.write_text("{not json")
    with pytest.raises(InputError, match="cannot be read"):
        load_calibration(path)


def test_a_real_sets_dump_is_fitted_and_scored_in_parts(tmp_path):
    from metaflood.flood.calibrate import DUMP_PARTS, FLOOD_FIELDS, calibrate, load_dump

    event = synthetic_event(8)
    n = event.flooded.size
    dump = {f"flood_{f}": getattr(event.evidence, f).ravel() for f in FLOOD_FIELDS}
    dump["flood_label"] = event.flooded.ravel().astype(np.uint8)
    dump["flood_label"][:50] = 255  # unlabelled pixels are not scored
    dump["flood_sample"] = np.repeat(np.arange(8), n // 8)
    np.savez(tmp_path / "ombria_train.npz", **dump)
    events = load_dump(tmp_path / "ombria_train.npz")
    assert [e.name for e in events] == [f"ombria_train#{i}" for i in range(1, DUMP_PARTS + 1)]
    assert sum(e.known.sum() for e in events) == (event.evidence.mapped.ravel()[50:]).sum()
    result = calibrate(
        [], [], tmp_path / "cal.json", checkpoint=None, real=[tmp_path / "ombria_train.npz"]
    )
    assert set(result["leave_one_event_out"]["per_event"]) == {e.name for e in events}
    assert load_calibration(tmp_path / "cal.json")["fitted_on"]["events"][0] == "ombria_train#1"
    (tmp_path / "not.npz").write_bytes(b"nothing")
    with pytest.raises(InputError, match="not a flood evidence dump"):
        load_dump(tmp_path / "not.npz")


def test_a_vv_only_log_ratio_keeps_its_margin(tmp_path):
    """A VV-only source writes the VH log-ratio all NaN; the ratio margin is VV's own."""
    paths = write_inputs(tmp_path)
    with rasterio.open(paths["sar_ratio"]) as src:
        ratio, profile = src.read(), src.profile
    ratio[1] = np.nan
    with rasterio.open(paths["sar_ratio"], "w", **profile) as dst:
        dst.write(ratio)
    evidence, _ = read_evidence(
        [paths["pre_water"], paths["post_water"]],
        paths["route_post"],
        paths["sar_evidence"],
        paths["sar_ratio"],
        paths["sar_summary"],
    )
    assert np.isfinite(evidence.ratio_margin_db).all()
    assert evidence.ratio_margin_db[FLOOD] == pytest.approx(-12.0 + 6.0)
    assert evidence.ratio_margin_db[50, 50] == pytest.approx(0.0 + 6.0)
