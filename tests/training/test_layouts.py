"""The three public layouts: discovery, pairing, splits, units and bad inputs."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from metaflood.core.errors import InputError
from metaflood.training.layouts import (
    FIT,
    LABEL_DRY,
    LABEL_NONE,
    LABEL_WATER,
    NOMINAL_DB,
    TEST,
    TRAIN,
    VALIDATION,
    discover,
    etci_split,
    layout,
    ombria_split,
)
from tests.helpers.realdata_sets import write_etci, write_ombria, write_sen1floods11


def test_etci_tiles_are_found_paired_and_split_by_block(tmp_path):
    root = write_etci(tmp_path / "etci", [(0, 0), (9, 0), (16, 8)])
    refs = discover(root, "etci2021")
    assert [r.position for r in refs] == [(0, 0), (16, 8), (9, 0)]
    # Blocks of 8 x 8 tiles: (0, 0) and (16, 8) lie in held-out blocks, (9, 0) in (1, 0).
    assert [r.split for r in refs] == [TEST, TEST, TRAIN]
    assert [r.id for r in discover(root, "etci2021", TRAIN)] == [refs[2].id]
    sample = layout("etci2021").load(refs[0])
    assert sample.sar_bands == ("VV", "VH") and sample.optical_bands == ()
    vv = sample.sar["post"][0]
    assert np.isnan(vv[:, :4]).all()  # 255: outside the swath
    assert NOMINAL_DB[0] <= np.nanmin(vv) and np.nanmax(vv) <= NOMINAL_DB[1]
    water = sample.water["post"]
    assert set(np.unique(water)) == {LABEL_DRY, LABEL_WATER, LABEL_NONE}
    assert (water[:, :4] == LABEL_NONE).all()
    # Neighbouring tiles sit side by side on the nominal grid.
    right = layout("etci2021").load(refs[2])
    assert right.transform.c - sample.transform.c == 9 * 96 * 10.0


def test_etci_passes_are_found_as_the_competition_publishes_them(tmp_path):
    flat = write_etci(tmp_path / "flat", [(0, 0), (9, 0)])
    published = tmp_path / "etci" / "train" / "valid" / "bangladesh_20170314t115609" / "tiles"
    published.parent.mkdir(parents=True)
    (flat / "bangladesh_20170314t115609").rename(published)
    refs = discover(tmp_path / "etci", "etci2021")
    assert [(r.id, r.split) for r in refs] == [
        ("bangladesh_20170314t115609_x-0_y-0", TEST),
        ("bangladesh_20170314t115609_x-9_y-0", TRAIN),  # blocks, whatever the folder
    ]
    assert refs[0].files["vv"].parent == published / "vv"
    (published / "vh").rename(published / "vh_old")
    with pytest.raises(InputError, match=r"tiles/vh: missing folder"):
        discover(tmp_path / "etci", "etci2021")


def test_ombria_triplets_keep_their_bands_and_flood_mask(tmp_path):
    root = write_ombria(tmp_path / "ombria", [1, 2, 151])
    refs = discover(root, "ombria")
    assert [r.split for r in refs] == [TRAIN, TRAIN, TEST]  # 151 // 50 == 3
    sample = layout("ombria").load(refs[0])
    assert sample.periods == ("pre", "post")
    assert sample.sar_bands == ("VV",)  # no VH is invented
    assert sample.optical_bands == ("swir16", "nir", "green")  # no blue, no red
    assert sample.optical["post"].shape == (3, 96, 96)
    assert sample.flood is not None and sample.water == {}
    assert set(np.unique(sample.flood)) == {LABEL_DRY, LABEL_WATER}


def test_ombrias_own_test_folder_measures_all_of_it_and_never_trains(tmp_path):
    root = write_ombria(tmp_path / "ombria", [1, 151])
    write_ombria(root, [13, 172], split="test")
    refs = discover(root, "ombria")
    assert [(r.id, r.split) for r in refs] == [
        ("test_0013", TEST),
        ("test_0172", TEST),
        ("train_0001", TRAIN),
        ("train_0151", TEST),
    ]
    assert [r.id for r in discover(root, "ombria", TRAIN)] == ["train_0001"]


def test_sen1floods11_reads_db_reflectance_labels_and_the_split_file(tmp_path):
    root = write_sen1floods11(tmp_path / "s1f11", ["Bolivia_1", "Ghana_2"], test=["Ghana_2"])
    refs = discover(root, "sen1floods11")
    assert [(r.id, r.split) for r in refs] == [("Bolivia_1", TRAIN), ("Ghana_2", TEST)]
    sample = layout("sen1floods11").load(refs[0])
    assert sample.crs == "EPSG:4326"
    assert sample.optical_bands == ("blue", "green", "red", "nir", "swir16")
    nir = sample.optical["post"][3]
    assert 0 < np.nanmedian(nir) < 1  # L1C DNs scaled to reflectance
    assert np.nanmin(sample.sar["post"][0]) < -15  # dB as stored
    assert (sample.water["post"][:3] == LABEL_NONE).all()  # -1: no label
    # Without split files every chip is measured.
    (root / "splits" / "flood_handlabeled" / "flood_test_data.csv").unlink()
    (root / "splits" / "flood_handlabeled" / "flood_train_data.csv").unlink()
    assert {r.split for r in discover(root, "sen1floods11")} == {TEST}


def test_split_rules_are_fixed():
    assert etci_split(0, 0) == TEST and etci_split(8, 0) == TRAIN and etci_split(16, 8) == TEST
    assert etci_split(16, 16) == TRAIN and etci_split(8, 16) == TEST
    assert ombria_split(149) == TRAIN and ombria_split(150) == TEST and ombria_split(200) == TRAIN
    assert ombria_split(13, "test") == TEST


def test_the_training_split_has_a_fit_and_a_validation_part(tmp_path):
    """Runs of 50 of OMBRIA's numbers (100-149 validate), blocks of ETCI's tiles."""
    ombria = write_ombria(tmp_path / "ombria", [1, 101, 151, 201], size=32)
    ids = {part: [r.id for r in discover(ombria, "ombria", part)] for part in (FIT, VALIDATION)}
    assert ids == {FIT: ["train_0001", "train_0201"], VALIDATION: ["train_0101"]}
    assert [r.id for r in discover(ombria, "ombria", TEST)] == ["train_0151"]
    etci = write_etci(tmp_path / "etci", [(9, 0), (8, 8), (0, 0)])
    # (9, 0) lies in block (1, 0), (8, 8) in (1, 1); (0, 0) is held out.
    assert [r.position for r in discover(etci, "etci2021", VALIDATION)] == [(9, 0)]
    assert [r.position for r in discover(etci, "etci2021", FIT)] == [(8, 8)]
    s1f11 = write_sen1floods11(tmp_path / "s1f11", ["Bolivia_1"])
    with pytest.raises(InputError, match="sen1floods11: no validation part"):
        discover(s1f11, "sen1floods11", VALIDATION)
    with pytest.raises(InputError, match="unknown split 'valid': one of train, test, fit, valid"):
        discover(ombria, "ombria", "valid")


def test_a_missing_folder_is_named(tmp_path):
    root = write_sen1floods11(tmp_path / "s1f11", ["Bolivia_1"])
    for path in (root / "S2Hand").iterdir():
        path.unlink()
    (root / "S2Hand").rmdir()
    with pytest.raises(InputError, match=r"S2Hand: missing folder"):
        discover(root, "sen1floods11")
    with pytest.raises(InputError, match="no such dataset folder"):
        discover(tmp_path / "nowhere", "etci2021")


def test_an_image_without_its_pair_is_named(tmp_path):
    root = write_etci(tmp_path / "etci", [(0, 0), (1, 0)])
    lone = root / "bangladesh_20170314t115609" / "vh" / "bangladesh_20170314t115609_x-1_y-0_vh.png"
    lone.unlink()
    with pytest.raises(InputError, match=r"x-1_y-0_vv\.png: has no vh pair"):
        discover(root, "etci2021")
    root = write_ombria(tmp_path / "ombria", [1, 2])
    (root / "OmbriaS2" / "train" / "AFTER" / "S2_after_0002.png").unlink()
    with pytest.raises(InputError, match=r"S1_after_0002\.png: has no optical_post pair"):
        discover(root, "ombria")


def test_a_label_of_another_size_is_named(tmp_path):
    root = write_etci(tmp_path / "etci", [(0, 0)])
    label = (
        root
        / "bangladesh_20170314t115609"
        / "flood_label"
        / ("bangladesh_20170314t115609_x-0_y-0.png")
    )
    Image.fromarray(np.zeros((64, 96), np.uint8)).save(label)
    (ref,) = discover(root, "etci2021")
    with pytest.raises(InputError, match=r"x-0_y-0\.png: is 64 x 96 px, but its sample is 96 x 96"):
        layout("etci2021").load(ref)


def test_an_unknown_layout_is_refused(tmp_path):
    with pytest.raises(InputError, match="unknown layout 'kuro'"):
        discover(tmp_path, "kuro")
