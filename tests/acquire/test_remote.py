"""Acquisition against real servers on 127.0.0.1: a STAC API (`rustac serve`) and a
range-request file server holding COGs, published like Planetary Computer's
Sentinel-1 RTC and Sentinel-2 L2A. No mock of the HTTP layer."""

from __future__ import annotations

import copy
import json
import logging
import traceback
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import rasterio

from metaflood.acquire.stage import Retry, acquire_period, search_scenes
from metaflood.core.errors import AcquisitionError, InputError
from metaflood.core.redact import redact_url
from tests.helpers.acquire_provider import (
    OPTICAL,
    SAR,
    Provider,
    build_provider,
    write_static_catalog,
)
from tests.helpers.acquire_servers import RangeFileServer, StacApiServer, cog_tile_bytes, free_port
from tests.helpers.events import demo_event_config

FAST = Retry(retries=2, backoff_s=0.05)
PRE_SAR = "demo-s1-20230905"
PRE_OPTICAL = "demo-s2-20230906"
PRODUCTS = ("sar.tif", "optical.tif", "optical_mask.tif", "scenes.json")


@dataclass
class Servers:
    provider: Provider
    files: RangeFileServer
    api: StacApiServer
    root: Path


def distractor(provider: Provider) -> dict:
    """A pre-event SAR item nearer the event but from another orbit: the pair rule must
    pass it over for the one sharing the post scene's orbit."""
    item = copy.deepcopy(provider.item(PRE_SAR))
    item["id"] = "other-orbit-20230908"
    item["properties"]["datetime"] = "2023-09-08T16:40:00Z"
    item["properties"]["sat:relative_orbit"] = 29
    item["properties"]["sat:orbit_state"] = "descending"
    return item


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    root = tmp_path_factory.mktemp("provider")
    (root / "served").mkdir()
    with RangeFileServer(root / "served") as files:
        provider = build_provider(demo_event_config(), "tiny", root, files.url)
        provider.items.append(distractor(provider))
        write_static_catalog(provider, provider.served, files.url)
        items = provider.write_item_collection(root / "items.json")
        with StacApiServer(items, root / "rustac.log") as api:
            yield Servers(provider, files, api, root)


def stac_event(url: str, **overrides) -> dict:
    event = demo_event_config()
    del event["demo"]
    event["sar"] = {"source": "stac", "preset": "planetary-computer", "url": url}
    event["optical"] = {"source": "stac", "preset": "planetary-computer", "url": url}
    event.update(overrides)
    return event


def run(event: dict, out: Path, cache: Path, periods=("pre", "post")) -> dict:
    search_scenes(
        event, "tiny", demo_catalog=None, cache_dir=cache, out=out / "selection.json", retry=FAST
    )
    scenes = {}
    for period in periods:
        scenes[period] = acquire_period(
            event,
            "tiny",
            period,
            selection=out / "selection.json",
            cache_dir=cache,
            out_sar=out / period / "sar.tif",
            out_optical=out / period / "optical.tif",
            out_optical_mask=out / period / "optical_mask.tif",
            out_scenes=out / period / "scenes.json",
            retry=FAST,
        )
    return scenes


def read(path: Path) -> np.ndarray:
    with rasterio.open(path) as src:
        return src.read()


def assert_nothing_written(out: Path) -> None:
    """No scene product and no temporary file (selection.json may exist when the search
    itself succeeded and the read failed)."""
    left = [p for p in out.rglob("*") if p.is_file()] if out.exists() else []
    left = [p for p in left if p.name != "selection.json"]
    assert not left, f"partial products left behind: {left}"


@pytest.fixture(scope="module")
def first_run(servers, tmp_path_factory):
    out = tmp_path_factory.mktemp("stac-run")
    servers.files.state.clear()
    scenes = run(stac_event(servers.api.url), out / "results", out / "cache")
    return out, scenes, servers.files.state.requests()


@pytest.fixture(scope="module")
def demo_reference(servers, tmp_path_factory):
    """The same event read through the demo source, from the generator's own catalog."""
    out = tmp_path_factory.mktemp("demo-run")
    event = demo_event_config()
    search_scenes(
        event,
        "tiny",
        demo_catalog=str(servers.provider.demo_catalog),
        cache_dir=out / "cache",
        out=out / "selection.json",
    )
    for period in ("pre", "post"):
        acquire_period(
            event,
            "tiny",
            period,
            selection=out / "selection.json",
            cache_dir=out / "cache",
            out_sar=out / period / "sar.tif",
            out_optical=out / period / "optical.tif",
            out_optical_mask=out / period / "optical_mask.tif",
            out_scenes=out / period / "scenes.json",
        )
    return out


def test_stac_api_gives_the_same_scenes_as_the_demo(first_run, demo_reference):
    """Planetary Computer's preset reads B02..B08 and B11 (swir16); the provider's B11 is
    at twice the pixel size, as Sentinel-2's 20 m beside 10 m: the scene is read on the
    fine grid and B11 interpolated onto it, close to the demo's own full-resolution B11."""
    out, scenes, _ = first_run
    for period in ("pre", "post"):
        for name in ("sar.tif", "optical.tif", "optical_mask.tif"):
            ours, theirs = out / "results" / period / name, demo_reference / period / name
            with rasterio.open(ours) as a, rasterio.open(theirs) as b:
                assert a.crs == b.crs and a.transform == b.transform
                assert a.descriptions == b.descriptions
            ours, theirs = read(ours), read(theirs)
            if name == "optical.tif":  # blue, green, red, nir, then the coarser swir16
                fine, coarse = ours[4], theirs[4]
                ours, theirs = ours[:4], theirs[:4]
                inner = (slice(2, -2), slice(2, -2))
                assert np.nanmedian(np.abs(fine[inner] - coarse[inner])) < 0.01
                assert np.corrcoef(fine[inner].ravel(), coarse[inner].ravel())[0, 1] > 0.9
            # The provider's S2 DNs carry the +1000 BOA offset: removed from the metadata.
            np.testing.assert_allclose(ours, theirs, atol=1e-6, equal_nan=True)
        with rasterio.open(out / "results" / period / "optical.tif") as src:
            assert src.descriptions == ("blue", "green", "red", "nir", "swir16")
    optical = scenes["pre"]["optical"]
    assert optical["collection"] == OPTICAL and optical["item"] == PRE_OPTICAL
    assert "processing baseline 05.09" in optical["items"][0]["assets"]["red"]["radiometry"]
    assert optical["cloud_over_aoi"] == 0.0


def test_sar_pre_and_post_share_the_orbit(first_run):
    _, scenes, _ = first_run
    assert scenes["pre"]["sar"]["item"] == PRE_SAR  # not the nearer other-orbit item
    assert scenes["pre"]["sar"]["collection"] == SAR
    assert "same relative orbit 102 (ascending)" in scenes["pre"]["sar"]["reason"]
    assert scenes["post"]["sar"]["properties"]["sat:relative_orbit"] == 102


def test_only_the_aoi_window_travels(servers, first_run):
    """Reads are the tiles under the AOI and the headers, nothing more; for this event
    that is within 1.5 times the AOI's pixel bytes (benchmarks/acquire_bytes.py)."""
    out, _, requests = first_run
    sent = sum(r.sent for r in requests)
    pixels = tiles = files = 0
    selection = json.loads((out / "results/selection.json").read_text())
    for period in ("pre", "post"):
        for modality in ("sar", "optical"):
            record = selection["periods"][period][modality]
            grid = record["grid"]
            for ref in record["items"][0]["bands"].values():
                path = servers.provider.served / ref["href"].split("/", 3)[3]
                with rasterio.open(path) as src:
                    pixels += grid["width"] * grid["height"] * np.dtype(src.dtypes[0]).itemsize
                tiles += cog_tile_bytes(path, grid["transform"], grid["width"], grid["height"])
                files += 1
    assert {r.status for r in requests} <= {200, 206}
    assert all(r.method == "HEAD" or r.range for r in requests), "every GET is a range request"
    headers = 2 * 16384 * files  # the first 16 kB of a file, read when it is opened
    assert sent <= 1.02 * tiles + headers, f"read {sent} bytes, tiles and headers {tiles}"
    assert sent <= 1.5 * pixels, f"read {sent} bytes for {pixels} bytes of AOI pixels"


def test_a_second_run_reads_nothing_new(servers, first_run):
    out, _, _ = first_run
    servers.files.state.clear()
    again = run(stac_event(servers.api.url), out / "again", out / "cache")
    assert servers.files.state.requests() == []
    for period in ("pre", "post"):
        np.testing.assert_array_equal(
            read(out / "again" / period / "sar.tif"), read(out / "results" / period / "sar.tif")
        )
    assert again["post"]["optical"]["item"] == first_run[1]["post"]["optical"]["item"]


def test_transient_server_errors_are_retried(servers, tmp_path):
    href = servers.provider.item(PRE_SAR)["assets"]["vv"]["href"]
    path = "/" + href.split("/", 3)[3]
    servers.files.state.fail_next[path] = 2
    servers.files.state.clear()
    run(stac_event(servers.api.url), tmp_path / "out", tmp_path / "cache", periods=("pre",))
    statuses = [r.status for r in servers.files.state.requests(path)]
    assert statuses.count(503) == 2 and statuses[-1] in (200, 206)
    assert (tmp_path / "out/pre/sar.tif").exists()


def test_credentials_in_catalog_hrefs_never_reach_the_products(servers, tmp_path, caplog):
    """Hrefs with credentials in the query are used by the search, but logged and stored
    without them (the read stage signs again where the provider needs it)."""
    secret = "sig=SECRET-SIGNATURE-42"
    items = copy.deepcopy(servers.provider.items)
    for item in items:
        for asset in item["assets"].values():
            asset["href"] += f"?st=2023-01-01&se=2099-01-01&sp=r&{secret}"
    with api_with(servers, items, tmp_path) as url, caplog.at_level(logging.INFO):
        run(stac_event(url), tmp_path / "out", tmp_path / "cache")
    assert "SECRET-SIGNATURE" in " ".join(r.path for r in servers.files.state.requests())
    written = [p.read_text() for p in (tmp_path / "out").rglob("*.json")]
    assert written and not any("SECRET-SIGNATURE" in text for text in written)
    assert "SECRET-SIGNATURE" not in caplog.text
    assert "SECRET-SIGNATURE" not in " ".join(
        p.read_bytes().decode("latin-1") for p in (tmp_path / "cache").rglob("*") if p.is_file()
    )


@contextmanager
def api_with(servers: Servers, items: list[dict], folder: Path):
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "items.json"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": items}))
    servers.files.state.clear()
    with StacApiServer(path, folder / "rustac.log") as api:
        yield api.url


EARTH_SEARCH_KEYS = {
    "B02": "blue",
    "B03": "green",
    "B04": "red",
    "B08": "nir",
    "B11": "swir16",
    "SCL": "scl",
}


def test_the_earth_search_preset_reads_swir16_under_its_common_name(servers, first_run, tmp_path):
    """The same optical items keyed as Earth Search keys them (common names, `swir16` for
    B11, `scl`): the earth-search preset gives the same five-band scene."""
    items = copy.deepcopy(servers.provider.items)
    for item in items:
        if item["collection"] == OPTICAL:
            item["assets"] = {EARTH_SEARCH_KEYS[k]: a for k, a in item["assets"].items()}
    with api_with(servers, items, tmp_path) as url:
        event = stac_event(url)
        event["optical"] = {"source": "stac", "preset": "earth-search", "url": url}
        scenes = run(event, tmp_path / "out", tmp_path / "cache", periods=("pre",))
    assert set(scenes["pre"]["optical"]["items"][0]["assets"]) == {
        "blue",
        "green",
        "red",
        "nir",
        "swir16",
        "mask",
    }
    np.testing.assert_array_equal(
        read(tmp_path / "out/pre/optical.tif"), read(first_run[0] / "results/pre/optical.tif")
    )


# ---------------------------------------------------------------------------------------
# Bad inputs: a clear error, nothing written


def test_no_item_in_the_window_names_window_and_collection(servers, tmp_path):
    event = stac_event(
        servers.api.url,
        pre={"start": "2023-08-01", "end": "2023-08-05"},
        event_date="2023-09-10",
    )
    with pytest.raises(AcquisitionError) as err:
        run(event, tmp_path / "out", tmp_path / "cache")
    message = str(err.value)
    assert "2023-08-01..2023-08-05" in message and "sentinel-1-rtc" in message
    assert "no item at all in the window" in message and "required" in message
    assert_nothing_written(tmp_path / "out")


def test_a_missing_optical_scene_is_acceptable_by_default(servers, tmp_path):
    items = [i for i in servers.provider.items if i["id"] != "demo-s2-20230916"]
    with api_with(servers, items, tmp_path) as url:
        scenes = run(stac_event(url), tmp_path / "out", tmp_path / "cache", periods=("post",))
    assert scenes["post"]["optical"]["status"] == "missing"
    with rasterio.open(tmp_path / "out/post/optical.tif") as src:
        assert src.tags()["absent"] == "true"


def test_a_query_holds_even_where_the_api_does_not_implement_it(servers, tmp_path):
    event = stac_event(servers.api.url)
    event["optical"]["query"] = {"eo:cloud_cover": {"lt": 20}}
    scenes = run(event, tmp_path / "out", tmp_path / "cache")
    assert scenes["pre"]["optical"]["status"] == "found"  # 0% cloud
    assert scenes["post"]["optical"]["status"] == "missing"  # half cloud: filtered out


def test_an_aoi_outside_every_footprint_is_named(servers, tmp_path):
    event = stac_event(servers.api.url, aoi={"bbox": [22.70, 32.80, 22.7032, 32.8027]})
    with pytest.raises(AcquisitionError) as err:
        run(event, tmp_path / "out", tmp_path / "cache")
    message = str(err.value)
    assert "sentinel-1-rtc" in message and "2023-09-01..2023-09-09" in message
    assert "none over the AOI" in message
    assert_nothing_written(tmp_path / "out")


def test_an_asset_returning_404_is_named(servers, tmp_path):
    items = copy.deepcopy(servers.provider.items)
    vv = next(i for i in items if i["id"] == PRE_SAR)["assets"]["vv"]
    vv["href"] = vv["href"].replace("vv.tif", "gone.tif")
    with api_with(servers, items, tmp_path) as url, pytest.raises(InputError) as err:
        run(stac_event(url), tmp_path / "out", tmp_path / "cache")
    assert "gone.tif" in str(err.value) and "404" in str(err.value)
    assert_nothing_written(tmp_path / "out")


@pytest.mark.parametrize("with_size", [True, False])
def test_a_truncated_cog_is_refused(servers, tmp_path, with_size):
    items = copy.deepcopy(servers.provider.items)
    vv = next(i for i in items if i["id"] == PRE_SAR)["assets"]["vv"]
    source = servers.provider.served / SAR / PRE_SAR / "vv.tif"
    cut = servers.provider.served / "cut" / f"vv-{with_size}.tif"
    cut.parent.mkdir(exist_ok=True)
    cut.write_bytes(source.read_bytes()[: source.stat().st_size // 2])
    vv["href"] = f"{servers.files.url}/cut/{cut.name}"
    if not with_size:
        del vv["file:size"]
    with api_with(servers, items, tmp_path) as url, pytest.raises(InputError) as err:
        run(stac_event(url), tmp_path / "out", tmp_path / "cache")
    message = str(err.value)
    assert cut.name in message and "truncated" in message
    assert_nothing_written(tmp_path / "out")


@pytest.mark.parametrize("href", ["../../../../etc/passwd", "file:///etc/passwd", "/etc/passwd"])
def test_an_escaping_href_from_a_remote_catalog_is_refused(servers, tmp_path, href):
    folder = servers.provider.served / f"escape-{abs(hash(href))}"
    folder.mkdir(exist_ok=True)
    catalog = write_static_catalog(servers.provider, folder, servers.files.url)
    item = folder / SAR / PRE_SAR / f"{PRE_SAR}.json"
    stac = json.loads(item.read_text())
    stac["assets"]["vv"]["href"] = href
    item.write_text(json.dumps(stac))
    url = f"{servers.files.url}/{folder.name}/{catalog.name}"
    event = stac_event(servers.api.url)
    event["sar"] = {
        "source": "static",
        "catalog": url,
        "collection": SAR,
        "assets": {"VV": "vv", "VH": "vh"},
    }
    with pytest.raises(AcquisitionError) as err:
        run(event, tmp_path / "out", tmp_path / "cache")
    assert "refused href" in str(err.value) and PRE_SAR in str(err.value)
    assert_nothing_written(tmp_path / "out")


def test_a_stac_api_may_not_name_local_files(servers, tmp_path):
    items = copy.deepcopy(servers.provider.items)
    next(i for i in items if i["id"] == PRE_SAR)["assets"]["vh"]["href"] = "file:///etc/hosts"
    with api_with(servers, items, tmp_path) as url, pytest.raises(AcquisitionError) as err:
        run(stac_event(url), tmp_path / "out", tmp_path / "cache")
    assert "refused href" in str(err.value) and "local files" in str(err.value)
    assert_nothing_written(tmp_path / "out")


def test_an_unreachable_provider_is_named_with_the_offline_demo(tmp_path):
    url = f"http://127.0.0.1:{free_port()}/api/stac/v1"
    with pytest.raises(AcquisitionError) as err:
        run(stac_event(url), tmp_path / "out", tmp_path / "cache")
    message = str(err.value)
    assert "Microsoft Planetary Computer" in message and url in message
    assert "offline demo" in message and "sentinel-1-rtc" in message
    assert_nothing_written(tmp_path / "out")


def api_event(url: str, **auth) -> dict:
    """A plain `stac` source (no preset) for both modalities."""
    event = stac_event(url)
    event["sar"] = {"source": "stac", "url": url, "collection": SAR, **auth}
    event["sar"]["assets"] = {"VV": "vv", "VH": "vh"}
    event["optical"] = {"source": "stac", "url": url, "collection": OPTICAL, **auth}
    event["optical"]["assets"] = {"blue": "B02", "green": "B03", "red": "B04", "nir": "B08"}
    return event


def test_a_stac_api_answering_401_is_said_to_refuse_the_credentials(servers, tmp_path, monkeypatch):
    """Issue 21: a 401 was reported as "cannot reach ... run the offline demo". Against a
    real HTTP server on loopback that wants a bearer token: which credentials it refused,
    and the variable (or file) they came from."""
    url = f"{servers.files.url}/api/stac/v1"
    servers.files.state.token = "the-right-token"
    try:
        monkeypatch.setenv("TEST_TOKEN", "a-wrong-token")
        with pytest.raises(AcquisitionError) as err:
            run(api_event(url, auth={"bearer_env": "TEST_TOKEN"}), tmp_path / "a", tmp_path / "c")
        message = str(err.value)
        assert "refused the credentials (HTTP 401)" in message, message
        assert "the environment variable TEST_TOKEN (auth.bearer_env)" in message
        assert "cannot reach" not in message and "offline demo" not in message
        assert "a-wrong-token" not in message
        assert servers.files.state.requests("/api/stac/v1")[-1].status == 401

        monkeypatch.setenv("NETRC", str(tmp_path / "netrc"))
        with pytest.raises(AcquisitionError, match=r"asks for credentials \(HTTP 401\) and none"):
            run(api_event(url), tmp_path / "b", tmp_path / "c")
        (tmp_path / "netrc").write_text("machine 127.0.0.1 login me password not-this-one\n")
        with pytest.raises(AcquisitionError) as err:
            run(api_event(url), tmp_path / "b", tmp_path / "c")
        assert f"came from the login for 127.0.0.1 in {tmp_path / 'netrc'}" in str(err.value)
        assert "not-this-one" not in str(err.value)
    finally:
        servers.files.state.token = None
    assert_nothing_written(tmp_path / "a")


def test_a_provider_error_never_shows_the_credentials_of_its_url(tmp_path):
    """Issue 21: the provider's name was built from the raw URL. A source whose URL
    carries credentials (built here directly: the configuration refuses one)."""
    import dataclasses

    from metaflood.acquire.sources import resolve_source
    from metaflood.acquire.stac import search_api
    from metaflood.acquire.stage import Retry
    from metaflood.core.config import aoi_polygon, date_range

    event = api_event(f"http://127.0.0.1:{free_port()}/stac")
    spec = resolve_source(event["sar"], "sar", None, "events.tiny.sar")
    url = f"http://user:pw-SECRET@127.0.0.1:{free_port()}/stac?sig=SIG-SECRET&v=1"
    spec = dataclasses.replace(
        spec, url=url, provider=spec.provider.replace(spec.url, redact_url(url))
    )
    access = Retry().access(spec)
    with pytest.raises(AcquisitionError) as err:
        search_api(spec, date_range(event, "pre", "e"), aoi_polygon(event, "e"), access)
    message = "".join(traceback.format_exception(err.value))
    assert "cannot reach" in message and "127.0.0.1" in message
    assert "SECRET" not in message


# ---------------------------------------------------------------------------------------
# Static catalogs over HTTP, and credentials


def static_event(catalog_url: str, **auth) -> dict:
    event = demo_event_config()
    del event["demo"]
    event["sar"] = {
        "source": "static",
        "catalog": catalog_url,
        "collection": SAR,
        "assets": {"VV": "vv", "VH": "vh"},
        **auth,
    }
    event["optical"] = {
        "source": "static",
        "catalog": catalog_url,
        "collection": OPTICAL,
        "assets": {"blue": "B02", "green": "B03", "red": "B04", "nir": "B08", "swir16": "B11"},
        "mask_asset": "SCL",
        "scale": 0.0001,
        **auth,
    }
    return event


def test_a_static_catalog_over_http_gives_the_same_scenes(servers, first_run, tmp_path):
    run(static_event(f"{servers.files.url}/catalog.json"), tmp_path / "out", tmp_path / "cache")
    for period in ("pre", "post"):
        for name in ("sar.tif", "optical.tif", "optical_mask.tif"):
            np.testing.assert_array_equal(
                read(tmp_path / "out" / period / name),
                read(first_run[0] / "results" / period / name),
            )


def test_a_bearer_token_comes_from_the_environment_only(servers, tmp_path, monkeypatch, caplog):
    token = "TOKEN-never-to-be-written"
    event = static_event(f"{servers.files.url}/catalog.json", auth={"bearer_env": "TEST_TOKEN"})
    servers.files.state.token = token
    try:
        monkeypatch.delenv("TEST_TOKEN", raising=False)
        with pytest.raises(AcquisitionError, match="TEST_TOKEN"):
            run(event, tmp_path / "unset", tmp_path / "cache")
        monkeypatch.setenv("TEST_TOKEN", "wrong")
        with pytest.raises(AcquisitionError, match="401"):
            run(event, tmp_path / "wrong", tmp_path / "cache")
        monkeypatch.setenv("TEST_TOKEN", token)
        servers.files.state.clear()
        with caplog.at_level(logging.INFO):
            run(event, tmp_path / "out", tmp_path / "cache")
    finally:
        servers.files.state.token = None
    assert {r.authorization for r in servers.files.state.requests()} == {f"Bearer {token}"}
    for path in (tmp_path / "out").rglob("*.json"):
        assert token not in path.read_text()
    assert token not in caplog.text


# ---------------------------------------------------------------------------------------
# Planetary Computer's URL signing, end to end on loopback


@pytest.fixture
def planetary_computer_settings():
    """The planetary-computer package caches its settings and tokens per process."""
    import planetary_computer
    from planetary_computer.sas import TOKEN_CACHE

    planetary_computer.settings.Settings.get.cache_clear()
    TOKEN_CACHE.clear()
    yield
    planetary_computer.settings.Settings.get.cache_clear()
    TOKEN_CACHE.clear()


def test_planetary_computer_urls_are_signed_when_read_and_stored_unsigned(
    servers, first_run, tmp_path, monkeypatch, caplog, planetary_computer_settings
):
    """Blob URLs as Planetary Computer gives them: the package fetches a SAS token from
    the token endpoint (with the subscription key from the environment), GDAL reads
    through a proxy that refuses unsigned blob requests, nothing secret is written."""
    from tests.helpers.acquire_servers import SasTokenServer

    signature = "SAS-SIGNATURE-7f3a"
    key = "SUBSCRIPTION-KEY-0b1c"
    items = copy.deepcopy(servers.provider.items)
    for item in items:
        for asset in item["assets"].values():
            asset["href"] = asset["href"].replace(
                servers.files.url, "http://derna.blob.core.windows.net"
            )
    proxy = servers.files.url.removeprefix("http://")
    with SasTokenServer(f"st=2023-09-01&se=2099-01-01&sp=rl&sig={signature}") as sas:
        monkeypatch.setenv("PC_SDK_SAS_URL", sas.url)
        monkeypatch.setenv("PC_SDK_SUBSCRIPTION_KEY", key)
        monkeypatch.setenv("GDAL_HTTP_PROXY", proxy)
        monkeypatch.setenv("HTTP_PROXY", servers.files.url)
        monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
        servers.files.state.signature = signature
        try:
            with api_with(servers, items, tmp_path) as url, caplog.at_level(logging.INFO):
                run(stac_event(url), tmp_path / "out", tmp_path / "cache")
        finally:
            servers.files.state.signature = None
    requests = servers.files.state.requests()
    assert requests and all("blob.core.windows.net" in r.path for r in requests)
    assert all(f"sig={signature}" in r.path for r in requests)
    assert {r.status for r in requests} <= {200, 206}
    assert set(sas.keys) == {key}
    for period in ("pre", "post"):
        np.testing.assert_array_equal(
            read(tmp_path / "out" / period / "optical.tif"),
            read(first_run[0] / "results" / period / "optical.tif"),
        )
    scenes = json.loads((tmp_path / "out/post/scenes.json").read_text())
    href = scenes["sar"]["items"][0]["assets"]["VV"]["href"]
    assert href == "http://derna.blob.core.windows.net/sentinel-1-rtc/demo-s1-20230915/vv.tif"
    stored = [p.read_bytes().decode("latin-1") for p in tmp_path.rglob("*") if p.is_file()]
    for secret in (signature, key):
        assert not any(secret in text for text in stored), secret
        assert secret not in caplog.text


def test_a_failed_read_resumes_with_what_was_already_fetched(servers, tmp_path):
    items = copy.deepcopy(servers.provider.items)
    vh = next(i for i in items if i["id"] == PRE_SAR)["assets"]["vh"]
    late = servers.provider.served / SAR / PRE_SAR / "vh-late.tif"
    vh["href"] = vh["href"].replace("vh.tif", late.name)
    with api_with(servers, items, tmp_path) as url:
        event = stac_event(url)
        with pytest.raises(InputError, match="vh-late.tif.*404"):
            run(event, tmp_path / "out", tmp_path / "cache", periods=("pre",))
        assert_nothing_written(tmp_path / "out")
        late.write_bytes((late.parent / "vh.tif").read_bytes())  # the asset appears
        try:
            servers.files.state.clear()
            run(event, tmp_path / "out", tmp_path / "cache", periods=("pre",))
        finally:
            late.unlink()
    fetched = {r.path.rsplit("/", 1)[-1] for r in servers.files.state.requests()}
    assert "vh-late.tif" in fetched and "vv.tif" not in fetched  # vv came from the cache
    assert (tmp_path / "out/pre/sar.tif").exists()
