"""Real servers on 127.0.0.1 for the acquisition tests and benchmarks.

- `RangeFileServer`: a static file server (http.server) that honours single HTTP range
  requests, logs every request with the bytes it sent, and can be told to fail
  (503 a number of times, refuse requests without a token), the way a provider does.
  It also answers as an HTTP forward proxy (absolute-URI requests), which is how the
  tests route `*.blob.core.windows.net` URLs to it, requiring a SAS signature on them.
- `SasTokenServer`: Planetary Computer's SAS token endpoint (`/token/{account}/{container}`).
- `StacApiServer`: the `rustac serve` STAC API (from the `rustac` wheel), loaded with
  an ItemCollection file, in memory.

Nothing here mocks the HTTP layer: GDAL, requests and pystac-client talk to these
servers over TCP exactly as they would to a provider.
"""

from __future__ import annotations

import http.server
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


@dataclass
class Request:
    method: str
    path: str
    range: str | None
    status: int
    sent: int  # body bytes written to the socket
    authorization: str | None


@dataclass
class ServerState:
    root: Path
    log: list[Request] = field(default_factory=list)
    fail_next: dict[str, int] = field(default_factory=dict)  # path -> 503 count
    token: str | None = None  # when set, a bearer token every request must carry
    signature: str | None = None  # when set, blob URLs (proxied) must carry sig=<this>
    lock: threading.Lock = field(default_factory=threading.Lock)

    def bytes_sent(self, suffix: str = "") -> int:
        with self.lock:
            return sum(r.sent for r in self.log if urlsplit(r.path).path.endswith(suffix))

    def requests(self, suffix: str = "") -> list[Request]:
        with self.lock:
            return [r for r in self.log if urlsplit(r.path).path.endswith(suffix)]

    def clear(self) -> None:
        with self.lock:
            self.log.clear()


class _Handler(http.server.BaseHTTPRequestHandler):
    state: ServerState
    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:  # keep pytest output clean
        pass

    def _record(self, status: int, sent: int) -> None:
        with self.state.lock:
            self.state.log.append(
                Request(
                    self.command,
                    self.path,
                    self.headers.get("Range"),
                    status,
                    sent,
                    self.headers.get("Authorization"),
                )
            )

    def _error(self, status: int) -> None:
        body = f"{status}\n".encode()
        # Recorded before the client can see the answer: a test reading the log right
        # after its client failed must find this request there.
        self._record(status, 0 if self.command == "HEAD" else len(body))
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Content-Type", "text/plain")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _file(self) -> Path | None:
        relative = urlsplit(self.path).path.lstrip("/")
        path = (self.state.root / relative).resolve()
        if self.state.root.resolve() not in path.parents or not path.is_file():
            return None
        return path

    def do_HEAD(self) -> None:
        self.do_GET()

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        key = url.path
        with self.state.lock:
            failures = self.state.fail_next.get(key, 0)
            if failures:
                self.state.fail_next[key] = failures - 1
        if failures:
            return self._error(503)
        if self.state.token and self.headers.get("Authorization") != f"Bearer {self.state.token}":
            return self._error(401)
        blob = (url.hostname or "").endswith(".blob.core.windows.net")
        signed = ("sig", self.state.signature) in parse_qsl(url.query)
        if blob and self.state.signature and not signed:
            return self._error(403)
        path = self._file()
        if path is None:
            return self._error(404)
        data = path.read_bytes()
        size = len(data)
        start, end, status = 0, size - 1, 200
        match = RANGE.match(self.headers.get("Range", "") or "")
        if match and size:
            first, last = match.groups()
            if first:
                start, end = int(first), min(int(last) if last else size - 1, size - 1)
            else:  # suffix range: the last N bytes
                start, end = max(size - int(last), 0), size - 1
            if start >= size:
                self._record(416, 0)
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{size}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            status = 206
        body = data[start : end + 1]
        self._record(status, 0 if self.command == "HEAD" else len(body))
        self.send_response(status)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Length", str(len(body)))
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)


class RangeFileServer:
    """Serve `root` on 127.0.0.1 (a free port) in a background thread."""

    def __init__(self, root: Path) -> None:
        self.state = ServerState(Path(root))
        handler = type("Handler", (_Handler,), {"state": self.state})
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> RangeFileServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class SasTokenServer:
    """Planetary Computer's SAS endpoint: GET /token/{account}/{container} gives a token;
    it records the subscription key each request carried."""

    def __init__(self, token: str) -> None:
        self.token = token
        self.keys: list[str | None] = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:
                server.keys.append(self.headers.get("Ocp-Apim-Subscription-Key"))
                body = json.dumps(
                    {"msft:expiry": "2099-01-01T00:00:00Z", "token": server.token}
                ).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}/token"

    def __enter__(self) -> SasTokenServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def cog_tile_bytes(path: Path, transform: tuple, width: int, height: int) -> int:
    """Compressed bytes of the tiles of band 1 under a window given on the file's pixel
    lattice: the least any COG reader must fetch for it (besides the header)."""
    import rasterio

    with rasterio.open(path) as src:
        col, row = ~src.transform @ (transform[2], transform[5])
        bh, bw = src.block_shapes[0]
        first_row, first_col = max(int(row) // bh, 0), max(int(col) // bw, 0)
        last_row = min(int(row + height - 1) // bh, (src.height - 1) // bh)
        last_col = min(int(col + width - 1) // bw, (src.width - 1) // bw)
        return sum(
            src.block_size(1, r, c)
            for r in range(first_row, last_row + 1)
            for c in range(first_col, last_col + 1)
        )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def rustac_executable() -> str:
    found = Path(sys.executable).parent / "rustac"
    if found.exists():
        return str(found)
    which = shutil.which("rustac")
    if which is None:
        raise RuntimeError("rustac is not installed (pip install -e '.[test]')")
    return which


class StacApiServer:
    """`rustac serve` on a free loopback port, loaded with an ItemCollection file."""

    def __init__(self, items_file: Path, log_file: Path) -> None:
        self.port = free_port()
        self.items_file = Path(items_file)
        self.log_file = Path(log_file)
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> StacApiServer:
        address = f"127.0.0.1:{self.port}"
        command = [rustac_executable(), "serve", "--create-collections", "--addr", address]
        with open(self.log_file, "w") as log:
            self.process = subprocess.Popen(
                [*command, str(self.items_file)],
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, "NO_PROXY": "127.0.0.1"},
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"rustac serve exited: {self.log_file.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(f"{self.url}/collections", timeout=1) as response:
                    if response.status == 200 and json.load(response)["collections"]:
                        return self
            except OSError:
                time.sleep(0.1)
        self.__exit__()
        raise RuntimeError("rustac serve did not answer within 30 s")

    def __exit__(self, *exc) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
