"""Catalog hrefs kept inside their folder (credentials are kept out of what is written
by `metaflood.core.redact`).

A catalog read over HTTP is untrusted input: an asset href may not point at local files
(`file://`, an absolute path, a GDAL `/vsi` path) nor climb out of the catalog's folder
with `..`.
"""

from __future__ import annotations

import posixpath
from pathlib import Path
from urllib.parse import unquote, urljoin, urlsplit

from metaflood.core.errors import AcquisitionError
from metaflood.core.redact import REMOTE_SCHEMES, redact_url


def is_remote(href: str) -> bool:
    return urlsplit(href).scheme in REMOTE_SCHEMES


def _inside(path: str, root: str) -> bool:
    root = root.rstrip("/") + "/"
    return path == root.rstrip("/") or path.startswith(root)


def _refuse(where: str, href: str, why: str) -> AcquisitionError:
    return AcquisitionError(f"{where}: refused href {redact_url(href)!r}: {why}")


def resolve_href(href: str, base: str, root: str | None, *, where: str) -> str:
    """The absolute href of an asset listed in a STAC document at `base`; refuse escapes.

    `root` is the folder (local path or URL) of the catalog the document belongs to;
    None for a STAC API, whose assets must be remote URLs. A remote catalog may only
    name remote assets, and a relative href must stay under its folder. A local catalog
    may name remote assets, or local files under its own folder.
    """
    if "\\" in href or "\x00" in href:
        raise _refuse(where, href, "invalid characters")
    scheme = urlsplit(href).scheme
    if href.startswith("/vsi"):
        raise _refuse(where, href, "a catalog may not name GDAL virtual files")
    if scheme in REMOTE_SCHEMES:
        return href
    if scheme and scheme != "file":
        raise _refuse(where, href, f"unsupported scheme {scheme!r}")
    if root is None or is_remote(root):
        if scheme == "file" or href.startswith("/"):
            raise _refuse(where, href, "a remote catalog may not point at local files")
        if root is None:
            raise _refuse(where, href, "a STAC API must give absolute http(s) or s3 hrefs")
        joined = urljoin(base, href)
        path = posixpath.normpath(unquote(urlsplit(joined).path))
        root_path = posixpath.normpath(unquote(urlsplit(root).path))
        if urlsplit(joined).netloc != urlsplit(root).netloc or not _inside(path, root_path):
            raise _refuse(where, href, f"it escapes the catalog folder {redact_url(root)}")
        return joined
    if scheme == "file":
        href = unquote(urlsplit(href).path)
    root_dir = Path(root).resolve()
    path = Path(href) if Path(href).is_absolute() else Path(base).resolve().parent / href
    path = path.resolve()
    if root_dir != path and root_dir not in path.parents:
        raise _refuse(where, href, f"it escapes the catalog folder {root_dir}")
    return str(path)
