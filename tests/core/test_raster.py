import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin
from rio_cogeo.cogeo import cog_validate

from metaflood.core.classes import colormap
from metaflood.core.errors import InputError
from metaflood.core.raster import (
    COG_COMPRESSION,
    SCENE_COMPRESSION,
    atomic_path,
    cog_writer,
    gtiff_compression,
    overview_factors,
    overview_writers,
    read_checked,
    write_cog,
)


def test_cog_with_overviews_descriptions_and_colormap(tmp_path):
    data = np.random.default_rng(0).integers(0, 8, (1, 600, 700)).astype(np.uint8)
    path = write_cog(
        tmp_path / "classes.tif",
        data,
        crs="EPSG:32634",
        transform=from_origin(600000, 3630000, 2, 2),
        nodata=255,
        descriptions=["class"],
        colormap=colormap(),
    )
    valid, errors, _ = cog_validate(str(path))
    assert valid, errors
    with rasterio.open(path) as src:
        assert src.overviews(1) == [2, 4]
        assert src.descriptions == ("class",)
        assert src.nodata == 255
        assert src.colormap(1)[3] == (0, 0, 255, 255)
        assert (src.read() == data).all()
    assert list(tmp_path.iterdir()) == [path]  # no temporary file left beside it


def test_a_failed_write_leaves_nothing(tmp_path):
    target = tmp_path / "out.tif"
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed")
    assert list(tmp_path.iterdir()) == []


def test_description_count_must_match(tmp_path):
    with pytest.raises(ValueError, match="2 descriptions for 3 bands"):
        write_cog(
            tmp_path / "x.tif",
            np.zeros((3, 4, 4), np.float32),
            crs="EPSG:32634",
            transform=from_origin(0, 0, 1, 1),
            nodata=np.nan,
            descriptions=["a", "b"],
        )


def test_corrupt_and_crs_less_files_are_input_errors(tmp_path):
    good = write_cog(
        tmp_path / "good.tif",
        np.ones((1, 300, 300), np.float32),
        crs="EPSG:32634",
        transform=from_origin(0, 0, 1, 1),
        nodata=np.nan,
    )
    truncated = tmp_path / "truncated.tif"
    truncated.write_bytes(good.read_bytes()[:1500])
    with pytest.raises(InputError, match="truncated.tif"):
        read_checked(truncated)
    garbage = tmp_path / "garbage.tif"
    garbage.write_text("not a tiff")
    with pytest.raises(InputError, match="cannot be read as a raster"):
        read_checked(garbage)
    plain = tmp_path / "nocrs.tif"
    with rasterio.open(
        plain, "w", driver="GTiff", width=4, height=4, count=1, dtype="uint8"
    ) as dst:
        dst.write(np.zeros((1, 4, 4), np.uint8))
    with pytest.raises(InputError, match="has no coordinate reference system"):
        read_checked(plain)


@pytest.mark.parametrize("shape", [(100, 100), (257, 100), (513, 512), (1025, 300), (2049, 700)])
def test_overview_levels_are_those_gdal_s_cog_driver_chooses(tmp_path, shape):
    height, width = shape
    path = tmp_path / "driver.tif"
    profile = {"driver": "COG", "blocksize": 256, "count": 1, "dtype": "uint8"}
    transform = from_origin(600000, 3630000, 2, 2)
    grid = {"height": height, "width": width, "crs": "EPSG:32634", "transform": transform}
    with rasterio.open(path, "w", **profile, **grid) as dst:
        dst.write(np.ones((1, height, width), np.uint8))
    with rasterio.open(path) as src:
        assert overview_factors(height, width, 256) == src.overviews(1)


def test_float_overviews_average_around_nodata(tmp_path):
    data = np.full((1, 600, 600), np.nan, np.float32)
    data[0, :, :300] = 2.0
    data[0, ::2, :300] = 4.0  # an average of 3 where the block is valid
    path = write_cog(
        tmp_path / "f.tif",
        data,
        crs="EPSG:32634",
        transform=from_origin(600000, 3630000, 2, 2),
        nodata=np.nan,
    )
    valid, errors, _ = cog_validate(str(path))
    assert valid, errors
    with rasterio.open(path, OVERVIEW_LEVEL=0) as src:
        overview = src.read(1)
    assert overview.shape == (300, 300)
    assert np.allclose(overview[:, :140], 3.0)
    assert np.isnan(overview[:, 160:]).all()


def test_overviews_written_by_the_caller_are_the_cog_s_own(tmp_path):
    path = tmp_path / "levels.tif"
    grid = {"crs": "EPSG:32634", "transform": from_origin(600000, 3630000, 2, 2)}
    with cog_writer(path, count=2, dtype="uint8", width=531, height=300, nodata=255, **grid) as dst:
        dst.write(np.ones((2, 300, 531), np.uint8))
        with overview_writers(dst) as levels:
            assert [(lv.height, lv.width) for lv in levels] == [(150, 266), (75, 133)]
            for value, level in enumerate(levels, start=7):  # not what averaging 1s gives
                level.write(np.full((2, level.height, level.width), value, np.uint8))
    valid, errors, _ = cog_validate(str(path))
    assert valid, errors
    with rasterio.open(path) as src:
        assert src.overviews(1) == [2, 4] and src.nodata == 255
        assert (src.read() == 1).all()
    for index, value in enumerate((7, 8)):
        with rasterio.open(path, OVERVIEW_LEVEL=index) as src:
            assert (src.read() == value).all()
    assert [p.name for p in tmp_path.iterdir()] == ["levels.tif"]


def test_stacks_are_raw_scenes_zstd_products_deflate_and_a_mosaic_keeps_the_codec(tmp_path):
    from metaflood.core.raster import ALIGNED_COMPRESSION, compression_of

    data = np.random.default_rng(1).normal(size=(2, 300, 300)).astype(np.float32)
    grid = {"crs": "EPSG:32634", "transform": from_origin(600000, 3630000, 2, 2)}
    for name, compression, codec in [
        ("stack", ALIGNED_COMPRESSION, None),
        ("scene", SCENE_COMPRESSION, "zstd"),
        ("product", COG_COMPRESSION, "deflate"),
    ]:
        path = write_cog(
            tmp_path / f"{name}.tif", data, nodata=np.nan, compression=compression, **grid
        )
        valid, errors, _ = cog_validate(str(path))
        assert valid, errors
        with rasterio.open(path) as src:
            assert (src.compression.name if src.compression else None) == codec
            assert compression_of(src) == compression
            np.testing.assert_array_equal(src.read(), data)


@pytest.mark.parametrize("compression", [SCENE_COMPRESSION, COG_COMPRESSION])
def test_gtiff_options_give_the_same_codec_and_level(tmp_path, compression):
    data = np.random.default_rng(1).normal(size=(64, 64)).astype(np.float32)
    options = gtiff_compression(compression)
    path = tmp_path / "plain.tif"
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        count=1,
        width=64,
        height=64,
        dtype="float32",
        crs="EPSG:32634",
        transform=from_origin(600000, 3630000, 2, 2),
        **options,
    ) as dst:
        dst.write(data, 1)
    with rasterio.open(path) as src:
        assert src.compression.name.upper() == compression["COMPRESS"]
        assert (src.read(1) == data).all()
    assert compression["LEVEL"] in options.values()


def test_smooth_integers_are_stored_as_differences_smaller_and_exact(tmp_path):
    yy, xx = np.mgrid[0:512, 0:512]
    smooth = np.stack([(127 + 120 * np.sin((yy + k * xx) / 40)) for k in range(3)]).round()
    smooth = smooth.astype(np.uint8)
    grid = {"crs": "EPSG:32634", "transform": from_origin(600000, 3630000, 2, 2)}
    sizes = {}
    for flag in (False, True):
        path = tmp_path / f"smooth_{flag}.tif"
        with cog_writer(
            path, count=3, dtype="uint8", width=512, height=512, nodata=255, smooth=flag, **grid
        ) as dst:
            dst.write(smooth)
        valid, errors, _ = cog_validate(str(path))
        assert valid, errors
        with rasterio.open(path) as src:
            assert src.tags(ns="IMAGE_STRUCTURE").get("PREDICTOR") == ("2" if flag else None)
            np.testing.assert_array_equal(src.read(), smooth)
            assert src.overviews(1) == [2]
        sizes[flag] = path.stat().st_size
    assert sizes[True] < 0.8 * sizes[False]


# ---------------------------------------------------------------------------------------
# Fault injection: a file-size limit in a child process (a stand-in for a full disk), and
# a child killed while it stages its outputs.

CHILD_WRITES = """
import sys
import numpy as np
from rasterio.transform import from_origin
from metaflood.core.errors import WriteError
from metaflood.core.raster import atomic_path, write_cog

what, path = sys.argv[1], sys.argv[2]
try:
    if what == "cog":
        data = (np.random.default_rng(0).random((1, 2048, 2048)) * 255).astype("uint8")
        data[:, :1024] = 7
        write_cog(path, data, crs="EPSG:32634", transform=from_origin(0, 0, 1, 1), nodata=255)
    elif what == "checkpoint":
        import torch
        from metaflood.model.checkpoint import write_atomic
        write_atomic(path, lambda tmp: torch.save({"w": torch.zeros(2_000_000)}, tmp))
    else:
        with atomic_path(path) as tmp:
            tmp.write_text("x" * 3_000_000)
except WriteError as err:
    print(err, file=sys.stderr)
    sys.exit(3)
"""


def _file_size_limit(limit: int):
    def limit_child() -> None:
        import resource
        import signal

        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # write() then fails with EFBIG
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return limit_child


@pytest.mark.parametrize(
    ("what", "limit_mb"),
    [
        ("cog", 1.0),  # GDAL raises at the write, with a message that says nothing
        ("cog", 4.5),  # GDAL only signals it, when the staging file is flushed
        ("json", 1.0),  # any product staged by atomic_path
        ("checkpoint", 1.0),  # torch.save fails in its own words
    ],
)
def test_a_write_past_the_file_size_limit_fails_there_naming_the_file_and_space(
    tmp_path, what, limit_mb
):
    """Issue 21: with `ulimit -f 10240`, GDAL's write error was ignored and the job died
    later reading the staging file back, never mentioning space."""
    import subprocess
    import sys

    out = tmp_path / {"cog": "pre.tif", "json": "stats.json", "checkpoint": "m.pt"}[what]
    result = subprocess.run(
        [sys.executable, "-c", CHILD_WRITES, what, str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        preexec_fn=_file_size_limit(int(limit_mb * 1e6)),
    )
    assert result.returncode == 3, result.stderr[-3000:]
    message = result.stderr.strip().splitlines()[-1]
    assert message.startswith(f"{out}: could not be written (")
    assert f"GB free in {tmp_path}" in message
    assert f"files may not exceed {limit_mb:.1f} MB here (ulimit -f)" in message
    if what == "cog":
        assert "Write error" in message and "IReadBlock" not in message
    assert list(tmp_path.iterdir()) == [], "nothing partial is left"


CHILD_KILLED = """
import sys, time
import numpy as np
from rasterio.transform import from_origin
from rasterio.windows import Window
from metaflood.core.raster import atomic_path, cog_writer

folder, ready = sys.argv[1], sys.argv[2]
with atomic_path(f"{folder}/stats.json") as tmp:
    tmp.write_text("{")
    with cog_writer(f"{folder}/pre.tif", count=1, dtype="uint8", crs="EPSG:32634",
                    transform=from_origin(0, 0, 1, 1), width=512, height=512, nodata=255) as dst:
        dst.write(np.zeros((1, 256, 512), "uint8"), window=Window(0, 0, 512, 256))
        open(ready, "w").close()
        time.sleep(120)
"""


def test_staging_left_by_a_killed_job_is_removed_when_the_output_is_written_again(tmp_path):
    """Issue 21: SIGKILL while a COG was staged left hidden folders
    (results/demo/landcover/.pre.tif.*/) that a successful resume never removed."""
    import signal
    import subprocess
    import sys
    import time

    folder, ready = tmp_path / "landcover", tmp_path / "ready"
    folder.mkdir()
    child = subprocess.Popen([sys.executable, "-c", CHILD_KILLED, str(folder), str(ready)])
    try:
        deadline = time.monotonic() + 120
        while not ready.exists():
            assert child.poll() is None, "the child ended before it was killed"
            assert time.monotonic() < deadline
            time.sleep(0.1)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    left = sorted(p.name for p in folder.iterdir())
    assert len(left) == 2, left
    assert [p for p in folder.iterdir() if p.is_dir() and p.name.startswith(".pre.tif.")]
    assert [p for p in folder.iterdir() if p.is_file() and p.name.startswith(".stats.json.")]
    # What is not a stale staging name of these outputs stays: another output's staging,
    # names of other patterns, the user's own files.
    keep = [
        folder / ".post.tif.abcd1234",
        folder / ".pre.tif.notours",
        folder / ".pre.tif.abcd1234.keep",
        folder / "notes.txt",
    ]
    keep[0].mkdir()
    for path in keep[1:]:
        path.write_text("mine")

    write_cog(  # the rerun
        folder / "pre.tif",
        np.ones((1, 512, 512), np.uint8),
        crs="EPSG:32634",
        transform=from_origin(0, 0, 1, 1),
        nodata=255,
    )
    with atomic_path(folder / "stats.json") as tmp:
        tmp.write_text("{}")
    assert sorted(folder.iterdir()) == sorted([folder / "pre.tif", folder / "stats.json", *keep])
    assert read_checked(folder / "pre.tif")[0].min() == 1
