"""Downloading a large file (the authors' checkpoint) with retries and a checksum.

Google Drive answers a request for a large file with a web page asking to confirm the
download (it cannot scan it for viruses); that page's form is followed once. The file
is written under a temporary name and renamed only when complete and, when a sha256 is
given, verified. When every try fails the message names the URL and says where to put
the file by hand.
"""

from __future__ import annotations

import hashlib
import os
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from html.parser import HTMLParser
from http.cookiejar import CookieJar
from pathlib import Path

from metaflood.core.errors import ModelError
from metaflood.core.raster import atomic_path
from metaflood.core.redact import redact_text, redact_url

CHUNK = 1 << 20
USER_AGENT = "metaflood (checkpoint download)"


class DownloadError(ModelError):
    """A download failed for good; the message tells the user what to do."""


class _ConfirmForm(HTMLParser):
    """The first form of a page: its action and its input fields."""

    def __init__(self) -> None:
        super().__init__()
        self.action: str | None = None
        self.fields: dict[str, str] = {}
        self._in_form = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "form" and self.action is None:
            self.action, self._in_form = a.get("action") or "", True
        elif tag == "input" and self._in_form and a.get("name"):
            self.fields[a["name"]] = a.get("value") or ""

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._in_form = False


def _confirm_url(page: bytes, base: str) -> str | None:
    form = _ConfirmForm()
    form.feed(page.decode("utf-8", errors="replace"))
    if form.action is None:
        return None
    action = urllib.parse.urljoin(base, form.action)
    sep = "&" if urllib.parse.urlparse(action).query else "?"
    return action + (sep + urllib.parse.urlencode(form.fields) if form.fields else "")


def _retryable(err: Exception) -> bool:
    if isinstance(err, urllib.error.HTTPError):
        return err.code >= 500 or err.code == 429
    return isinstance(err, (urllib.error.URLError, TimeoutError, ConnectionError, OSError))


def _fetch(opener, url: str, tmp: Path, timeout: float) -> str:
    """Download to `tmp`; returns the sha256. Follows one confirmation page."""
    for _ in range(2):
        request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
        with opener.open(request, timeout=timeout) as response:
            if response.headers.get_content_type() == "text/html":
                page = response.read(CHUNK)
                nxt = _confirm_url(page, response.geturl())
                if nxt is None or nxt == url:
                    raise DownloadError(
                        f"{redact_url(url)} answered with a web page, not the file (it may need a "
                        "sign-in or be over its download quota)"
                    )
                url = nxt
                continue
            digest = hashlib.sha256()
            with open(tmp, "wb") as f:
                while block := response.read(CHUNK):
                    f.write(block)
                    digest.update(block)
            return digest.hexdigest()
    raise DownloadError(f"{redact_url(url)}: still a confirmation page after confirming")


def download_file(
    url: str,
    out: str | os.PathLike,
    *,
    sha256: str | None = None,
    retries: int = 3,
    timeout: float = 60.0,
    backoff: float = 2.0,
    log: Callable[[str], None] = print,
) -> Path:
    """Download `url` to `out` atomically; retry transient failures with a growing pause."""
    out = Path(out)
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(CookieJar()))
    shown = redact_url(url)
    by_hand = f"download it by hand from {shown} and save it as {out}, then run again"
    last: Exception | None = None
    for attempt in range(1, retries + 1):
        try:
            with atomic_path(out) as tmp:
                digest = _fetch(opener, url, tmp, timeout)
                if sha256 and digest != sha256.lower():
                    raise DownloadError(
                        f"{shown}: sha256 {digest} does not match the expected {sha256}; "
                        f"nothing was written to {out}"
                    )
            log(f"downloaded {shown} to {out} ({out.stat().st_size} bytes, sha256 {digest})")
            return out
        except DownloadError:
            raise
        except Exception as err:
            if not _retryable(err):
                raise DownloadError(
                    f"could not download {shown} ({redact_text(err)}); {by_hand}"
                ) from None
            last = err
            log(f"try {attempt}/{retries} to download {shown} failed: {redact_text(err)}")
            if attempt < retries:
                time.sleep(backoff ** (attempt - 1))
    raise DownloadError(
        f"could not download {shown} after {retries} tries ({redact_text(last)}); {by_hand}"
    )
