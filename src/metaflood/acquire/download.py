"""Reading only the AOI window of each asset, remote or local, with a cache.

Remote COGs are read through GDAL's /vsicurl/ (HTTP range requests): only the header
and the tiles under the window travel. Each band read onto a scene grid is cached under
`resources/` by a key of (href without credentials, band, checksum, grid, resampling),
so a second run, or a run resumed after a failure, reads nothing it already has.
Transient failures (connection errors, 5xx, 429) are retried with exponential backoff
(GDAL retries inside a read as well); permanent ones (404, 401/403, a truncated file,
a size that disagrees with the catalog) stop with the asset named. Credentials come
from the environment (a bearer token variable, Planetary Computer's subscription key)
or netrc, and every message goes through `redact_text`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import re
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import rasterio
import requests
from rasterio.enums import Resampling
from rasterio.errors import RasterioError
from rasterio.transform import Affine
from rasterio.vrt import WarpedVRT
from rasterio.warp import transform_bounds
from rasterio.windows import Window
from shapely.geometry import Polygon

from metaflood.acquire.scene import BandRef
from metaflood.acquire.security import is_remote
from metaflood.core.errors import AcquisitionError, InputError
from metaflood.core.grid import Grid
from metaflood.core.hashing import multihash_sha256
from metaflood.core.raster import SCENE_COMPRESSION, atomic_path, gtiff_compression
from metaflood.core.redact import redact_text, redact_url

log = logging.getLogger(__name__)

TRANSIENT = re.compile(
    r"CURL error|timed out|Timeout|Connection (reset|refused)"
    r"|HTTP (response code: )?(5\d\d|429|408)"
)


@dataclass(frozen=True)
class Access:
    """How to reach a provider: signing, credentials, retries. Holds no secret itself."""

    sign: str | None = None  # "planetary-computer"
    bearer_env: str | None = None  # environment variable with a bearer token
    retries: int = 3
    backoff_s: float = 1.0
    timeout_s: int = 60

    def token(self) -> str | None:
        if not self.bearer_env:
            return None
        value = os.environ.get(self.bearer_env)
        if not value:
            raise AcquisitionError(
                f"the environment variable {self.bearer_env} (the provider's token) is not set"
            )
        return value

    def headers(self) -> dict[str, str]:
        token = self.token()
        return {"Authorization": f"Bearer {token}"} if token else {}

    def gdal_options(self) -> dict:
        options = {
            "GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR",
            "GDAL_HTTP_MAX_RETRY": str(self.retries),
            "GDAL_HTTP_RETRY_DELAY": str(self.backoff_s),
            "GDAL_HTTP_TIMEOUT": str(self.timeout_s),
            "GDAL_HTTP_CONNECTTIMEOUT": str(min(self.timeout_s, 20)),
            "GDAL_HTTP_MERGE_CONSECUTIVE_RANGES": "YES",
            "GDAL_HTTP_NETRC": "YES",
            "CPL_VSIL_CURL_CHUNK_SIZE": "16384",
        }
        token = self.token()
        if token:
            options["GDAL_HTTP_HEADERS"] = f"Authorization: Bearer {token}"
        return options

    def credentials(self, url: str, *, signed: bool = False) -> str | None:
        """Where the credentials sent to `url` come from, by name (never their value);
        None when none are sent. `signed`: an asset href this access signs."""
        if self.bearer_env:
            return f"the token in the environment variable {self.bearer_env} (auth.bearer_env)"
        if signed and self.sign == "planetary-computer":
            return (
                "the SAS token Planetary Computer's token service gave (with the "
                "subscription key in PC_SDK_SUBSCRIPTION_KEY, when set)"
            )
        if requests.utils.get_netrc_auth(url):
            netrc = os.environ.get("NETRC") or "~/.netrc"
            return f"the login for {urlsplit(url).hostname} in {netrc}"
        return None

    def refusal(self, what: str, url: str, status: int, *, signed: bool = False) -> str:
        """A message for a provider that answered 401 or 403: it refused the credentials,
        and they came from this variable or file (or none were sent)."""
        source = self.credentials(url, signed=signed)
        if source is None:
            return (
                f"{what} asks for credentials (HTTP {status}) and none were sent: set "
                f"auth.bearer_env to the name of an environment variable holding a token, "
                f"or put a login for {urlsplit(url).hostname} in ~/.netrc"
            )
        return (
            f"{what} refused the credentials (HTTP {status}): they came from {source}; "
            f"check that they are valid for it"
        )

    def signed(self, href: str) -> str:
        """The href to open: signed in memory when the provider needs it, never stored."""
        if self.sign == "planetary-computer" and is_remote(href):
            import planetary_computer

            try:
                return planetary_computer.sign_url(href)
            except Exception as err:  # requests errors, bad token responses
                raise AcquisitionError(
                    f"cannot sign {redact_url(href)} with a Planetary Computer token "
                    f"({redact_text(err)})"
                ) from err
        return href


def check_file(ref: BandRef, access: Access) -> None:
    """Size (and, for local files, checksum) against what the catalog says."""
    if is_remote(ref.href):
        if not ref.href.startswith(("http://", "https://")):
            return
        url = access.signed(ref.href)
        try:
            response = requests.head(
                url, headers=access.headers(), timeout=access.timeout_s, allow_redirects=True
            )
        except requests.RequestException as err:
            raise AcquisitionError(
                f"cannot reach {redact_url(ref.href)} ({redact_text(err)})"
            ) from err
        if response.status_code in (405, 501):  # HEAD not allowed: GDAL will tell
            return
        if response.status_code in (401, 403):
            raise InputError(
                access.refusal(
                    f"the server of {redact_url(ref.href)}",
                    ref.href,
                    response.status_code,
                    signed=True,
                )
            )
        if response.status_code >= 400:
            raise InputError(
                f"{redact_url(ref.href)}: the server answered HTTP {response.status_code} "
                f"({response.reason})" + _hint(response.status_code)
            )
        length = response.headers.get("Content-Length")
        if ref.size is not None and length is not None and int(length) != ref.size:
            raise InputError(
                f"{redact_url(ref.href)}: is {int(length)} bytes on the server but the catalog "
                f"says {ref.size} (file:size): truncated or corrupt"
            )
        return
    path = Path(ref.href)
    if not path.is_file():
        raise InputError(f"{path}: does not exist")
    if ref.size is not None and path.stat().st_size != ref.size:
        raise InputError(
            f"{path}: is {path.stat().st_size} bytes but the catalog says {ref.size} "
            f"(file:size): truncated or corrupt"
        )
    if ref.checksum and ref.checksum.startswith("1220") and multihash_sha256(path) != ref.checksum:
        raise InputError(
            f"{path}: its sha256 differs from the catalog's file:checksum (corrupt or replaced)"
        )


def _hint(status: int) -> str:
    if status == 404:
        return "; the catalog names an asset the server does not have"
    return ""


def open_raster(href: str) -> rasterio.DatasetReader:
    try:
        return rasterio.open(href)
    except RasterioError as err:
        message = f"{redact_url(href)}: cannot be opened as a raster ({redact_text(err)})"
        raise InputError(message) from None


def grid_for_aoi(
    href: str, aoi: Polygon, access: Access, margin_px: int = 4, cache: AssetCache | None = None
) -> Grid:
    """The AOI's bounding box (plus a margin) on the pixel lattice of the asset at `href`."""
    if cache is not None:
        known = cache.get_grid(href, aoi, margin_px)
        if known is not None:
            return known
    with rasterio.Env(**access.gdal_options()), open_raster(access.signed(href)) as src:
        if src.crs is None:
            raise InputError(f"{redact_url(href)}: has no coordinate reference system")
        crs, transform = src.crs, src.transform
    if transform.b != 0 or transform.d != 0:
        raise InputError(f"{redact_url(href)}: rotated rasters are not supported")
    left, bottom, right, top = transform_bounds("EPSG:4326", crs, *aoi.bounds, densify_pts=21)
    inverse = ~transform
    cols, rows = zip(*(inverse @ (x, y) for x in (left, right) for y in (bottom, top)), strict=True)
    col0, row0 = math.floor(min(cols)) - margin_px, math.floor(min(rows)) - margin_px
    col1, row1 = math.ceil(max(cols)) + margin_px, math.ceil(max(rows)) + margin_px
    origin = transform @ (col0, row0)
    grid_transform = Affine(transform.a, 0.0, origin[0], 0.0, transform.e, origin[1])
    grid = Grid(crs.to_string(), grid_transform, col1 - col0, row1 - row0)
    if cache is not None and is_remote(href):
        cache.put_grid(href, aoi, margin_px, grid)
    return grid


def _aligned_window(src: rasterio.DatasetReader, grid: Grid) -> Window | None:
    """The grid as a window of `src` when both share CRS and pixel lattice; else None."""
    transform = grid.transform
    if src.crs is None or src.crs != rasterio.crs.CRS.from_user_input(grid.crs):
        return None
    if not np.allclose([src.transform.a, src.transform.e], [transform.a, transform.e]):
        return None
    col, row = ~src.transform @ (transform.c, transform.f)
    if abs(col - round(col)) > 1e-6 or abs(row - round(row)) > 1e-6:
        return None
    return Window(round(col), round(row), grid.width, grid.height)


def _read_aligned(src, band: int, window: Window, grid: Grid) -> np.ndarray:
    out = np.full((grid.height, grid.width), np.nan, np.float32)
    col0, row0 = max(window.col_off, 0), max(window.row_off, 0)
    col1 = min(window.col_off + window.width, src.width)
    row1 = min(window.row_off + window.height, src.height)
    if col1 <= col0 or row1 <= row0:
        return out
    raw = src.read(band, window=Window(col0, row0, col1 - col0, row1 - row0), masked=True)
    values = raw.astype(np.float32).filled(np.nan)
    r, c = row0 - window.row_off, col0 - window.col_off
    out[r : r + values.shape[0], c : c + values.shape[1]] = values
    return out


def _read_warped(src, band: int, grid: Grid, resampling: Resampling) -> np.ndarray:
    float_data = np.dtype(src.dtypes[band - 1]).kind == "f"
    options = {
        "crs": grid.crs,
        "transform": grid.transform,
        "width": grid.width,
        "height": grid.height,
        "resampling": resampling,
    }
    if src.nodata is None and float_data:
        options["nodata"] = np.nan
    elif src.nodata is None:
        options["add_alpha"] = True
    with WarpedVRT(src, **options) as vrt:
        raw = vrt.read(band, masked=True)
    return raw.astype(np.float32).filled(np.nan)


def read_band(
    ref: BandRef, grid: Grid, access: Access, resampling: Resampling
) -> tuple[np.ndarray, tuple[float, float]]:
    """One band on `grid` as float32 in stored units (not yet scaled), NaN where nodata,
    and the file's own (scale, offset) of that band."""
    with rasterio.Env(**access.gdal_options()), open_raster(access.signed(ref.href)) as src:
        if src.crs is None:
            raise InputError(f"{redact_url(ref.href)}: has no coordinate reference system")
        if not 1 <= ref.band <= src.count:
            raise InputError(
                f"{redact_url(ref.href)}: has {src.count} bands, there is no band {ref.band}"
            )
        file_scale = (float(src.scales[ref.band - 1]), float(src.offsets[ref.band - 1]))
        window = _aligned_window(src, grid)
        try:
            if window is not None:
                return _read_aligned(src, ref.band, window, grid), file_scale
            return _read_warped(src, ref.band, grid, resampling), file_scale
        except RasterioError as err:
            raise InputError(
                f"{redact_url(ref.href)}: is corrupt or truncated ({redact_text(err)})"
            ) from err


def scaled(values: np.ndarray, ref: BandRef, href_scale: tuple[float, float]) -> np.ndarray:
    scale = ref.scale if ref.scale is not None else href_scale[0]
    offset = ref.offset if ref.offset is not None else href_scale[1]
    return (values * np.float32(scale) + np.float32(offset)).astype(np.float32)


@dataclass(frozen=True)
class Job:
    label: str  # for progress lines: item and band
    ref: BandRef
    grid: Grid
    resampling: Resampling


class AssetCache:
    """Band windows already read, as GeoTIFFs under `root`, keyed by what was read."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)

    def key(self, job: Job) -> str:
        text = json.dumps(
            {
                "href": redact_url(job.ref.href),
                "band": job.ref.band,
                "checksum": job.ref.checksum,
                "size": job.ref.size,
                "grid": job.grid.to_dict(),
                "resampling": job.resampling.name,
            },
            sort_keys=True,
        )
        return hashlib.sha256(text.encode()).hexdigest()[:32]

    def path(self, job: Job) -> Path:
        key = self.key(job)
        return self.root / key[:2] / f"{key}.tif"

    def _grid_path(self, href: str, aoi: Polygon, margin_px: int) -> Path:
        text = json.dumps([redact_url(href), list(aoi.bounds), margin_px])
        return self.root / "grids" / f"{hashlib.sha256(text.encode()).hexdigest()[:32]}.json"

    def get_grid(self, href: str, aoi: Polygon, margin_px: int) -> Grid | None:
        path = self._grid_path(href, aoi, margin_px)
        return Grid.from_dict(json.loads(path.read_text())) if path.exists() else None

    def put_grid(self, href: str, aoi: Polygon, margin_px: int, grid: Grid) -> None:
        # The cache is shared by concurrent jobs: none may remove another's staging.
        with atomic_path(self._grid_path(href, aoi, margin_px), owned=False) as tmp:
            tmp.write_text(json.dumps(grid.to_dict()))

    def get(self, job: Job) -> tuple[np.ndarray, tuple[float, float]] | None:
        path = self.path(job)
        if not path.exists():
            return None
        try:
            with rasterio.open(path) as src:
                return src.read(1), (float(src.scales[0]), float(src.offsets[0]))
        except RasterioError:
            log.warning("cache entry %s is unreadable; reading the asset again", path.name)
            return None

    def put(self, job: Job, data: np.ndarray, file_scale: tuple[float, float]) -> None:
        profile = {
            "driver": "GTiff",
            "count": 1,
            "height": job.grid.height,
            "width": job.grid.width,
            "dtype": "float32",
            "crs": job.grid.crs,
            "transform": job.grid.transform,
            "nodata": np.nan,
            # Read again by every run over the same area: ZSTD writes and reads faster
            # than DEFLATE at the same size (docs/performance.md).
            **gtiff_compression(SCENE_COMPRESSION),
            "predictor": 3,
        }
        with (
            atomic_path(self.path(job), owned=False) as tmp,
            rasterio.open(tmp, "w", **profile) as dst,
        ):
            dst.write(data, 1)
            dst.scales, dst.offsets = (file_scale[0],), (file_scale[1],)
            dst.update_tags(href=redact_url(job.ref.href), band=str(job.ref.band))


def first_valid(layers: Sequence[np.ndarray]) -> np.ndarray:
    """Each pixel from the first layer with a value there (NaN is none), in the order
    given: items mosaicked in the order they were chosen, scenes in the order they rank.
    The first layer is filled in place, so a large scene is not copied."""
    out = layers[0]
    for layer in layers[1:]:
        gap = np.isnan(out)
        out[gap] = layer[gap]
    return out


class NoCache(AssetCache):
    """Local files are read directly: a cached copy would only cost disk, and could
    hide a file replaced or damaged since."""

    def __init__(self) -> None:
        super().__init__(Path("."))

    def get(self, job):
        return None

    def put(self, job, data, file_scale) -> None:
        return None


class Downloader:
    """Reads jobs in parallel threads, each through the cache, with retries."""

    def __init__(
        self,
        cache: AssetCache,
        access: Access,
        *,
        workers: int = 4,
        progress: Callable[[str], None] | None = None,
    ) -> None:
        self.cache = cache
        self.access = access
        self.workers = max(1, workers)
        self.progress = progress or log.info
        self._lock = threading.Lock()
        self._checked: set[str] = set()

    def _check_once(self, ref: BandRef) -> None:
        with self._lock:
            if ref.href in self._checked:
                return
        check_file(ref, self.access)
        with self._lock:
            self._checked.add(ref.href)

    def _fetch(self, job: Job) -> tuple[np.ndarray, tuple[float, float]]:
        attempt = 0
        while True:
            try:
                self._check_once(job.ref)
                return read_band(job.ref, job.grid, self.access, job.resampling)
            except (InputError, AcquisitionError) as err:
                attempt += 1
                if attempt > self.access.retries or not TRANSIENT.search(str(err)):
                    raise
                delay = self.access.backoff_s * 2 ** (attempt - 1)
                self.progress(f"  retry {attempt} of {job.label} in {delay:.1f} s: {err}")
                time.sleep(delay)

    def _one(self, job: Job, index: int, total: int) -> np.ndarray:
        started = time.monotonic()
        cached = self.cache.get(job)
        if cached is not None:
            data, file_scale = cached
            self.progress(f"[{index}/{total}] {job.label}: from cache")
        else:
            data, file_scale = self._fetch(job)
            self.cache.put(job, data, file_scale)
            seconds = time.monotonic() - started
            self.progress(
                f"[{index}/{total}] {job.label}: read {job.grid.width} x {job.grid.height} px "
                f"from {redact_url(job.ref.href)} in {seconds:.1f} s"
            )
        return scaled(data, job.ref, file_scale)

    def read(self, jobs: Sequence[Job]) -> list[np.ndarray]:
        """Scaled float32 arrays, in the order of `jobs`; the first failure stops the rest."""
        total = len(jobs)
        with ThreadPoolExecutor(max_workers=min(self.workers, max(total, 1))) as pool:
            futures = [pool.submit(self._one, job, i, total) for i, job in enumerate(jobs, 1)]
            try:
                return [f.result() for f in futures]
            except BaseException:
                for future in futures:
                    future.cancel()
                raise
