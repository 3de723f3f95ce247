"""Searching a static STAC catalog (pystac), on disk or over HTTP.

The catalog is walked down to the configured collection and its items are filtered by
window and AOI here, since a static catalog has no search endpoint. Every link pystac
follows is checked first: a catalog over HTTP may not lead pystac to local files, and a
local catalog may not lead it out of its folder.
"""

from __future__ import annotations

import logging
import posixpath
from pathlib import Path
from urllib.error import URLError
from urllib.parse import urlsplit

import pystac
import requests
from pystac.stac_io import DefaultStacIO
from shapely.geometry import Polygon, shape

from metaflood.acquire.download import Access
from metaflood.acquire.security import is_remote, resolve_href
from metaflood.acquire.sources import SourceSpec
from metaflood.acquire.stac import OFFLINE_HINT, matches_query
from metaflood.core.config import DateRange
from metaflood.core.errors import AcquisitionError
from metaflood.core.redact import redact_text, redact_url

log = logging.getLogger(__name__)


def catalog_root(href: str) -> str:
    """The folder of a catalog file: links and assets must stay under it."""
    if is_remote(href):
        parts = urlsplit(href)
        return f"{parts.scheme}://{parts.netloc}{posixpath.dirname(parts.path)}/"
    return str(Path(href).resolve().parent)


class GuardedStacIO(DefaultStacIO):
    """pystac I/O that reads only inside the catalog's folder (or its server)."""

    def __init__(self, root: str, access: Access) -> None:
        super().__init__(headers=access.headers())
        self.root = root
        self.access = access

    def read_text(self, source, *args, **kwargs) -> str:
        href = str(source)
        resolve_href(href, href, self.root, where="catalog link")
        return self.read_text_from_href(href)

    def read_text_from_href(self, href: str) -> str:
        """Over HTTP with requests (netrc, clear status errors, headers never logged)."""
        if not is_remote(href):
            return super().read_text_from_href(href)
        try:
            response = requests.get(href, headers=self.headers, timeout=60)
        except requests.RequestException as err:
            raise AcquisitionError(
                f"cannot reach {redact_url(href)} ({type(err).__name__}: {redact_text(err)}); "
                f"{OFFLINE_HINT}"
            ) from None
        if response.status_code in (401, 403):
            what = f"the server of {redact_url(href)}"
            raise AcquisitionError(self.access.refusal(what, href, response.status_code))
        if response.status_code >= 400:
            raise AcquisitionError(
                f"{redact_url(href)}: the server answered HTTP {response.status_code} "
                f"({response.reason})"
            )
        return response.text


def load_catalog(spec: SourceSpec, access: Access) -> tuple[pystac.Catalog, str]:
    root = catalog_root(spec.url)
    stac_io = GuardedStacIO(root, access)
    try:
        catalog = pystac.read_file(spec.url, stac_io=stac_io)
    except AcquisitionError:
        raise
    except (URLError, OSError) as err:
        raise AcquisitionError(
            f"cannot read {spec.provider} ({type(err).__name__}: {redact_text(err)}); "
            f"{OFFLINE_HINT}"
        ) from err
    except Exception as err:  # pystac raises several types for invalid JSON or STAC
        raise AcquisitionError(f"cannot read {spec.provider}: {redact_text(err)}") from err
    if not isinstance(catalog, pystac.Catalog):
        raise AcquisitionError(f"{spec.provider} is a STAC {type(catalog).__name__}, not a catalog")
    return catalog, root


def _collection(catalog: pystac.Catalog, collection_id: str, provider: str) -> pystac.Catalog:
    if isinstance(catalog, pystac.Collection) and catalog.id == collection_id:
        return catalog
    for collection in catalog.get_all_collections():
        if collection.id == collection_id:
            return collection
    raise AcquisitionError(f"{provider} has no collection {collection_id!r}")


def collection_items(spec: SourceSpec, access: Access) -> tuple[list[pystac.Item], str]:
    """Every item of the source's collection in its static catalog, and the catalog's
    root folder (for resolving asset hrefs)."""
    catalog, root = load_catalog(spec, access)
    collection = _collection(catalog, spec.collection, spec.provider)
    try:
        return list(collection.get_items(recursive=True)), root
    except AcquisitionError:
        raise
    except (URLError, OSError) as err:
        raise AcquisitionError(
            f"cannot read the items of {spec.provider}: {redact_text(err)}"
        ) from err


def search_static(
    spec: SourceSpec, window: DateRange, aoi: Polygon, access: Access
) -> tuple[list[pystac.Item], str, str]:
    """Items in the window whose footprint meets the AOI, a note when there are none,
    and the catalog's root folder (for resolving asset hrefs)."""
    everything, root = collection_items(spec, access)
    in_window = [i for i in everything if i.datetime is not None and window.contains(i.datetime)]
    items = [
        i
        for i in in_window
        if shape(i.geometry).intersects(aoi) and matches_query(i.properties, spec.query)
    ]
    note = ""
    if not items:
        note = (
            f"the collection has {len(in_window)} items in the window, none over the AOI"
            if in_window
            else "the collection has no item at all in the window"
        )
    log.info("%s: %d items of %s in %s", spec.provider, len(items), spec.collection, window)
    return items, note, root
