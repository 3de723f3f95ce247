"""Water evidence per period: SAR water, the optical index, the fused map."""

from __future__ import annotations

import json

import numpy as np
import pytest
from rasterio.transform import from_origin

from metaflood.core.classes import NUM_CLASSES, WATER
from metaflood.core.errors import InputError
from metaflood.core.raster import read_checked, write_cog
from metaflood.core.settings import ChangeSettings, section_defaults
from metaflood.water.evidence import MNDWI, NDWI, choose_index, normalised_difference
from metaflood.water.fit import fit_from_dumps
from metaflood.water.fusion import (
    DEFAULT_FUSION,
    FEATURES,
    WaterEvidence,
    fit_fusion,
    load_fusion,
    water_probability,
)
from metaflood.water.stage import map_water
from tests.helpers.realdata_sets import reflectance, sar_db, water_scene

UTM = "EPSG:32634"
CHANGE = ChangeSettings.from_section(section_defaults("change", {"min_area_m2": 200}))


def test_the_index_follows_the_bands_acquired():
    assert choose_index(["blue", "green", "red", "nir", "swir16"]) is MNDWI
    assert choose_index(["blue", "green", "red", "nir"]) is NDWI
    assert choose_index(["swir16", "nir", "green"]) is MNDWI
    assert choose_index(["red", "nir"]) is None


def test_normalised_difference_is_nan_where_undefined():
    out = normalised_difference(np.array([0.3, 0.0, 0.1]), np.array([0.1, 0.0, -0.1]))
    assert out[0] == pytest.approx(0.5)
    assert np.isnan(out[1:]).all()


def _stack(tmp_path, rng, size=192, optical=True, bands=("blue", "green", "red", "nir", "swir16")):
    water = water_scene(rng, size)
    transform = from_origin(500000, 4000000, 10.0, 10.0)
    layers, names = [sar_db(rng, water, "VV"), sar_db(rng, water, "VH")], ["VV", "VH"]
    refl = reflectance(rng, water)
    layers += [refl[b] for b in bands]
    names += list(bands)
    stack = write_cog(
        tmp_path / "stack.tif",
        np.stack(layers),
        crs=UTM,
        transform=transform,
        nodata=np.nan,
        descriptions=names,
    )
    valid = np.full(water.shape, 3 if optical else 1, np.uint8)
    valid[:, :5] = 255
    valid_path = write_cog(tmp_path / "valid.tif", valid, crs=UTM, transform=transform, nodata=255)
    proba = np.zeros((NUM_CLASSES, *water.shape), np.uint8)
    proba[WATER] = np.where(water, 200, 30)
    proba[4] = 254 - proba[WATER]
    proba[:, valid == 255] = 255
    proba_path = write_cog(tmp_path / "proba.tif", proba, crs=UTM, transform=transform, nodata=255)
    return water, stack, valid_path, proba_path


def _run(tmp_path, stack, valid, proba, fusion=None):
    out = {k: tmp_path / f"{k}.tif" for k in ("sar", "evidence", "water")}
    summary = map_water(
        stack,
        valid,
        proba,
        change=CHANGE,
        fusion=fusion,
        out_sar=out["sar"],
        out_evidence=out["evidence"],
        out_water=out["water"],
        out_summary=tmp_path / "w.json",
    )
    return {k: read_checked(p)[0] for k, p in out.items()}, summary


def iou(predicted, truth):
    return (predicted & truth).sum() / (predicted | truth).sum()


def test_the_stage_finds_the_water_from_each_line(tmp_path):
    rng = np.random.default_rng(1)
    water, stack, valid, proba = _stack(tmp_path, rng)
    products, summary = _run(tmp_path, stack, valid, proba)
    inside = np.ones(water.shape, bool)
    inside[:, :5] = False
    assert summary["index"] == "MNDWI"
    assert summary["thresholds"]["VV"]["fallback"] is False
    assert -21 < summary["thresholds"]["VV"]["value"] < -9  # between water and land
    sar = products["sar"][0]
    assert (sar[~inside] == 255).all()
    assert iou(sar == 1, water & inside) > 0.8
    index_margin = products["evidence"][2]
    assert iou(index_margin > 0, water & inside) > 0.95
    fused = products["water"][0]
    assert (fused[~inside] == 255).all() and fused[inside].max() <= 100
    assert iou((fused >= 50) & inside, water & inside) > 0.9
    assert json.loads((tmp_path / "w.json").read_text())["pixels"]["inside"] == inside.sum()


def test_without_clear_optical_the_index_says_nothing(tmp_path):
    rng = np.random.default_rng(2)
    _, stack, valid, proba = _stack(tmp_path, rng, optical=False)
    products, summary = _run(tmp_path, stack, valid, proba)
    assert np.isnan(products["evidence"][1:]).all()
    assert summary["pixels"]["index"] == 0
    assert (products["water"][0][:, 5:] <= 100).all()  # still mapped, from SAR and MetaRS


def test_ndwi_when_no_swir_band_was_acquired(tmp_path):
    rng = np.random.default_rng(3)
    _, stack, valid, proba = _stack(tmp_path, rng, bands=("blue", "green", "red", "nir"))
    _, summary = _run(tmp_path, stack, valid, proba)
    assert summary["index"] == "NDWI"


def _labelled_evidence(seed: int, n: int) -> tuple[np.ndarray, WaterEvidence]:
    """Water labels and every line of evidence, each telling water apart with noise."""
    rng = np.random.default_rng(seed)
    label = rng.integers(0, 2, n).astype(np.uint8)
    evidence = WaterEvidence(
        land_cover=np.clip(0.5 + 0.3 * (label - 0.5) + rng.normal(0, 0.2, n), 0, 1),
        sar_margin=np.where(label == 1, -4.0, 4.0) + rng.normal(0, 2, n),
        index_margin=np.where(label == 1, 0.2, -0.2) + rng.normal(0, 0.1, n),
    )
    return label, evidence


def test_fusion_is_fitted_per_variant_and_applied_where_evidence_exists(tmp_path):
    n = 4000
    label, evidence = _labelled_evidence(4, n)
    evidence.index_margin[: n // 2] = np.nan  # half without optical
    evidence.sar_margin[-n // 4 :] = np.nan  # a quarter without SAR
    fusion = fit_fusion([("a", evidence, label)])
    assert set(fusion["variants"]) == set(FEATURES)
    assert fusion["variants"]["land_cover"]["coef"] == [1.0]
    sar = fusion["variants"]["land_cover+sar_margin"]
    assert sar["coef"][1] < 0  # darker than the water level: more likely water
    assert fusion["variants"]["land_cover+sar_margin+index_margin"]["coef"][2] > 0
    assert fusion["variants"]["sar_margin"]["features"] == ["sar_margin"]
    # A variant learns from every pixel with its lines: SAR alone from all that have SAR.
    assert sum(fusion["variants"]["sar_margin"]["pixels"].values()) == 3 * n // 4
    probability = water_probability(evidence, fusion)
    assert ((probability >= 0.5) == (label == 1)).mean() > 0.9
    np.savez(tmp_path / "dump.npz", label=label, **evidence.__dict__)
    fitted = fit_from_dumps([tmp_path / "dump.npz"], tmp_path / "fusion.json")
    assert load_fusion(tmp_path / "fusion.json")["variants"] == fitted["variants"]


def test_variants_a_sar_only_set_cannot_fit_are_kept_from_another_fusion(tmp_path):
    n = 3000
    label, evidence = _labelled_evidence(5, n)
    evidence.index_margin[:] = np.nan  # a SAR-only set: no optical index anywhere
    np.savez(tmp_path / "sar_only.npz", label=label, **evidence.__dict__)
    with pytest.raises(InputError, match="'land_cover\\+sar_margin\\+index_margin' variant"):
        fit_from_dumps([tmp_path / "sar_only.npz"], tmp_path / "refused.json")
    assert not (tmp_path / "refused.json").exists()

    base = load_fusion()
    fitted = fit_from_dumps(
        [tmp_path / "sar_only.npz"], tmp_path / "fusion.json", keep_from=DEFAULT_FUSION
    )
    variants = fitted["variants"]
    for variant, features in FEATURES.items():
        if "index_margin" in features:
            assert variants[variant]["kept_from"] == DEFAULT_FUSION.name
            assert variants[variant]["coef"] == base["variants"][variant]["coef"]
        else:
            assert "kept_from" not in variants[variant]
    assert variants["land_cover+sar_margin"]["pixels"] == {"sar_only": n}
    assert fitted["fitted"]["variants_kept_from"] == DEFAULT_FUSION.name
    assert load_fusion(tmp_path / "fusion.json")["variants"] == variants


def test_a_fusion_fitted_on_other_features_is_refused(tmp_path):
    path = tmp_path / "fusion.json"
    path.write_text(json.dumps({"variants": {"sar_margin": {"features": ["x"]}}}))
    with pytest.raises(InputError, match="refit it with `metaflood fit-water-fusion`"):
        load_fusion(path)


def test_the_shipped_fusion_loads():
    fusion = load_fusion()
    assert fusion["fitted"]["on"]
