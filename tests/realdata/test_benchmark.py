"""`metaflood benchmark-real`: each layout's samples through the stages, scored in one run."""

from __future__ import annotations

import csv
import dataclasses
import json

import numpy as np
import pytest
import rasterio
from PIL import Image

from metaflood.cli import main
from metaflood.core.errors import ConfigError, InputError
from metaflood.flood.calibrate import NETWORK_FIELD
from metaflood.flood.support import SUPPORT
from metaflood.realdata.benchmark import BenchmarkRun, run_benchmark, settings_from
from metaflood.training.flood import FloodRecipe, train_flood
from tests.helpers.realdata_sets import write_etci, write_ombria, write_sen1floods11
from tests.helpers.tiny_model import train_tiny


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return train_tiny(tmp_path_factory.mktemp("model") / "tiny.pt")


@pytest.fixture(scope="module")
def vv_checkpoint(tmp_path_factory):
    """A model reading what OMBRIA has: VV, and green, NIR and SWIR."""
    return train_tiny(
        tmp_path_factory.mktemp("model") / "vv.pt",
        sar_bands=("VV",),
        optical_bands=("green", "nir", "swir16"),
    )


COUNTS = ("true_positives", "false_positives", "false_negatives")


def _rows(path):
    with path.open() as handle:
        return {(r["target"], r["condition"], r["line"]): r for r in csv.DictReader(handle)}


def test_etci_tiles_are_mapped_from_sar_and_scored_beside_otsu(tmp_path, checkpoint):
    root = write_etci(tmp_path / "etci", [(0, 0), (1, 0), (9, 0)])
    out = tmp_path / "out"
    code = main(
        [
            "benchmark-real",
            str(root),
            "--layout",
            "etci2021",
            "--checkpoint",
            str(checkpoint),
            "--out",
            str(out),
            "--threads",
            "1",
        ]
    )
    assert code == 0
    rows = _rows(out / "benchmark.csv")
    key = ("water (post)", "sar_only")
    otsu = rows[(*key, "Otsu on VV (per sample)")]
    assert float(otsu["iou"]) > 0.5
    pooled = rows[(*key, "Otsu on VV (one threshold for the set)")]
    assert float(pooled["iou"]) > 0.5 and float(pooled["coverage"]) == 1
    assert rows[(*key, "SAR water")]["kind"] == "evidence"
    for line in ("land cover (MetaRS water)", "SAR water", "fused water map"):
        assert 0 <= float(rows[(*key, line)]["iou"]) <= 1
    assert float(rows[(*key, "SAR water")]["iou"]) > 0.5
    # SAR only: no optical line can answer, so none is reported as if it had.
    assert float(rows[(*key, "optical water index (MNDWI, else NDWI)")]["coverage"]) == 0
    assert ("water (post)", "both", "Otsu on VV (per sample)") not in rows  # no optical
    text = (out / "benchmark.md").read_text()
    assert "| water (post) | sar_only | baseline | Otsu on VV (per sample) |" in text
    assert "samples: 2" in text  # the two held-out tiles of block (0, 0)
    assert (out / "benchmark.png").read_bytes()[:4] == b"\x89PNG"


def test_sen1floods11_chips_are_scored_per_condition_and_route(tmp_path, checkpoint):
    root = write_sen1floods11(tmp_path / "s1f11", ["Bolivia_1", "Ghana_2"])
    out = tmp_path / "out"
    settings = settings_from(checkpoint, None, cloud_cover=0.5, threads=1)
    run = BenchmarkRun(root, "sen1floods11", "test", out, settings)
    board = run_benchmark(run)
    assert board.samples == 2
    rows = _rows(out / "benchmark.csv")
    conditions = {c for _, c, _ in rows}
    assert conditions == {"both", "sar_only", "optical_only"}
    both = {line for (_, c, line) in rows if c == "both"}
    assert {
        "NDWI > Otsu (per sample)",
        "NDWI > Otsu (one threshold for the set)",
        "Otsu on VV (per sample)",
        "land cover, joint head",
        "land cover, sar_only head",
    } <= both
    assert float(rows[("water (post)", "optical_only", "NDWI > Otsu (per sample)")]["iou"]) > 0.8


def test_ombria_triplets_are_mapped_with_vv_alone_and_scored_for_flood(tmp_path, vv_checkpoint):
    """OMBRIA's SAR is VV only and its optical green, NIR and SWIR: a model reading those
    maps it through every stage (no band invented), and the flood is scored per condition
    beside the log-ratio and water-index baselines of the same run."""
    root = write_ombria(tmp_path / "ombria", [150, 151])  # both in the held-out runs
    out, kept = tmp_path / "out", tmp_path / "kept"
    settings = settings_from(vv_checkpoint, None, threads=1)
    board = run_benchmark(BenchmarkRun(root, "ombria", "test", out, settings, keep=kept))
    assert board.samples == 2
    rows = _rows(out / "benchmark.csv")
    conditions = {c for t, c, _ in rows if t == "flood"}
    assert conditions == {"both", "sar_only", "post_sar_only"}  # the change stage needs SAR
    for condition in ("both", "sar_only"):
        for line in ("SAR change", "flood extent (confidence >= 50)"):
            assert 0 <= float(rows[("flood", condition, line)]["iou"]) <= 1
        assert ("flood", condition, "log-ratio Otsu (VV, per sample)") in rows
    assert float(rows[("flood", "both", "water index change (Otsu, per sample)")]["iou"]) > 0.5
    # The extent split by what it rests on: every flooded pixel in one case, so the
    # cases' recalls add up to the extent's.
    for condition in ("both", "sar_only"):
        cases = [rows[("flood", condition, f"flood extent, {name}")] for name in SUPPORT]
        assert {case["kind"] for case in cases} == {"support"}
        extent = rows[("flood", condition, "flood extent (confidence >= 50)")]
        assert sum(float(case["recall"]) for case in cases) == pytest.approx(
            float(extent["recall"]), abs=3e-3
        )
    assert not any(t.startswith("water") for t, _, _ in rows)  # OMBRIA labels flood only
    # Each sample's own scores, whose counts pool back to the table's figures.
    with (out / "samples.csv").open() as handle:
        per_sample = [
            r
            for r in csv.DictReader(handle)
            if (r["target"], r["condition"], r["line"]) == ("flood", "both", "SAR change")
        ]
    assert sorted(r["sample"] for r in per_sample) == ["train_0150", "train_0151"]
    tp, fp, fn = (sum(int(r[k]) for r in per_sample) for k in COUNTS)
    table = rows[("flood", "both", "SAR change")]
    assert float(table["iou"]) == pytest.approx(tp / (tp + fp + fn), abs=5e-4)
    ious = [float(r["iou"]) for r in per_sample if r["iou"]]
    assert float(table["median_sample_iou"]) == pytest.approx(np.median(ious), abs=5e-4)
    stacks = list(kept.rglob("aligned/post.tif"))
    assert stacks
    with rasterio.open(stacks[0]) as src:
        assert src.descriptions == ("VV", "green", "nir", "swir16")  # nothing invented


def test_a_flood_network_is_scored_alone_and_only_adds_to_the_extent(tmp_path, vv_checkpoint):
    """`--flood-network`: its own line beside the others, run through the change stage's
    join, which raises confidences and so never maps less flood than the evidence alone."""
    root = write_ombria(tmp_path / "ombria", [150])
    network = tmp_path / "flood.pt"
    train_flood(
        write_ombria(tmp_path / "training", [0, 1], seed=1),
        network,
        FloodRecipe(iterations=2),
        log=lambda _: None,
    )
    rows = {}
    for name, flood_network in (("alone", None), ("joined", network)):
        settings = settings_from(vv_checkpoint, None, threads=1, flood_network=flood_network)
        dump = tmp_path / f"{name}.npz"
        run_benchmark(
            BenchmarkRun(root, "ombria", "test", tmp_path / name, settings, None, None, dump)
        )
        rows[name] = _rows(tmp_path / name / "benchmark.csv")
    extent = "flood extent (confidence >= 50)"
    for condition in ("both", "sar_only", "post_sar_only"):
        line = rows["joined"][("flood", condition, "flood network (probability >= 50)")]
        assert 0 <= float(line["recall"]) <= 1 and float(line["coverage"]) == 1
        joined, alone = (rows[n][("flood", condition, extent)] for n in ("joined", "alone"))
        assert float(joined["recall"]) >= float(alone["recall"])
        assert not any(r[2].startswith("flood network") for r in rows["alone"])
    assert "flood network: `" in (tmp_path / "joined" / "benchmark.md").read_text()
    with pytest.raises(ConfigError, match="flood network .*missing.pt: no such file"):
        settings_from(vv_checkpoint, None, flood_network=tmp_path / "missing.pt")
    # The dump keeps the network's probability beside the evidence, for fit-flood-join.
    with np.load(tmp_path / "joined.npz") as joined, np.load(tmp_path / "alone.npz") as alone:
        assert NETWORK_FIELD not in alone
        percent = joined[NETWORK_FIELD]
        assert percent.shape == joined["flood_label"].shape and percent.dtype == np.uint8
        assert ((percent <= 100) | (percent == 255)).all()


def test_a_fitted_join_runs_through_the_benchmark_for_its_network(tmp_path, vv_checkpoint):
    """fit-flood-join on a dump of the validation part, then the held-out sample scored
    with that join; another network's join is refused naming the product."""
    root = write_ombria(tmp_path / "ombria", [1, 2, 101, 102, 150])
    network = tmp_path / "flood.pt"
    train_flood(root, network, FloodRecipe(iterations=2), log=lambda _: None, split="fit")
    settings = settings_from(vv_checkpoint, None, threads=1, flood_network=network)
    dump = tmp_path / "validation.npz"
    run_benchmark(
        BenchmarkRun(root, "ombria", "validation", tmp_path / "v", settings, None, None, dump)
    )
    main(
        [
            "fit-flood-join",
            str(dump),
            "--flood-network",
            str(network),
            "--out",
            str(tmp_path / "cal.json"),
        ]
    )
    joined = dataclasses.replace(settings, calibration=tmp_path / "cal.json")
    board = run_benchmark(BenchmarkRun(root, "ombria", "test", tmp_path / "t", joined))
    assert board.samples == 1
    other = tmp_path / "other.pt"
    train_flood(root, other, FloodRecipe(iterations=2, seed=1), log=lambda _: None, split="fit")
    with pytest.raises(InputError, match="network.tif: written by the flood network with sha256"):
        run_benchmark(
            BenchmarkRun(
                root,
                "ombria",
                "test",
                tmp_path / "o",
                dataclasses.replace(
                    joined, change=dataclasses.replace(joined.change, flood_network=str(other))
                ),
            )
        )


def test_adapting_per_condition_learns_only_from_the_periods_allowed_to_teach(
    tmp_path, vv_checkpoint
):
    """`--adapt` fine-tunes per sample and condition; with `model.adapt.periods: [post]`
    the post-event optical image missing leaves nothing to learn from, and the summary
    says which period taught what."""
    root = write_ombria(tmp_path / "ombria", [150])
    kept = tmp_path / "kept"
    settings = settings_from(vv_checkpoint, None, threads=1, adapt=True)
    adapt = {**settings.adapt, "iterations": 2, "min_pixels": 50, "min_post_pixels": 50}
    adapt["periods"] = ["post"]
    settings = dataclasses.replace(settings, adapt=adapt)
    run_benchmark(BenchmarkRun(root, "ombria", "test", tmp_path / "out", settings, keep=kept))
    summaries = {p.parent.name: json.loads(p.read_text()) for p in kept.rglob("adaptation.json")}
    assert set(summaries) == {"both", "sar_only", "optical_only", "post_sar_only"}
    assert summaries["both"]["adapted"] is True, summaries["both"]["reason"]
    assert set(summaries["both"]["pseudo_labelled_by_period"]) == {"post"}
    for condition in ("sar_only", "post_sar_only"):  # no clear post-event optical pixel
        assert summaries[condition]["adapted"] is False
        assert summaries[condition]["pseudo_labelled_by_period"] == {"post": 0}


def test_a_bad_sample_stops_the_run_before_any_table(tmp_path, checkpoint):
    root = write_etci(tmp_path / "etci", [(0, 0), (1, 0)])
    label = (
        root
        / "bangladesh_20170314t115609"
        / "water_body_label"
        / ("bangladesh_20170314t115609_x-1_y-0.png")
    )
    Image.fromarray(np.zeros((50, 50), np.uint8)).save(label)
    out = tmp_path / "out"
    settings = settings_from(checkpoint, None, threads=1)
    with pytest.raises(InputError, match=r"x-1_y-0\.png: is 50 x 50 px"):
        run_benchmark(BenchmarkRun(root, "etci2021", "test", out, settings))
    assert not (out / "benchmark.csv").exists() and not (out / "benchmark.md").exists()


def test_a_missing_dataset_folder_is_a_one_line_error(tmp_path, checkpoint, capsys):
    code = main(
        [
            "benchmark-real",
            str(tmp_path / "none"),
            "--layout",
            "ombria",
            "--checkpoint",
            str(checkpoint),
            "--out",
            str(tmp_path / "out"),
        ]
    )
    assert code == 1
    assert "no such dataset folder" in capsys.readouterr().err
