"""Checkpoint download against a real HTTP server on loopback."""

from __future__ import annotations

import hashlib
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from metaflood.cli import main
from metaflood.model.download import DownloadError, download_file

PAYLOAD = bytes(range(256)) * 5000  # 1.28 MB, several chunks
SHA = hashlib.sha256(PAYLOAD).hexdigest()


class Handler(BaseHTTPRequestHandler):
    failures: dict[str, int] = {}

    def log_message(self, *args):  # keep the test output clean
        pass

    def _send(self, status: int, body: bytes, ctype: str = "application/octet-stream") -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path == "/file":
            self._send(200, PAYLOAD)
        elif self.path.startswith("/flaky"):
            left = Handler.failures.setdefault(self.path, 2)
            if left:
                Handler.failures[self.path] = left - 1
                self._send(503, b"busy")
            else:
                self._send(200, PAYLOAD)
        elif self.path.startswith("/uc?"):  # Google Drive's "cannot scan for viruses" page
            page = (
                b'<html><body><form id="download-form" action="/download" method="get">'
                b'<input type="hidden" name="id" value="abc"><input type="hidden" name="confirm" '
                b'value="t"><input type="submit" value="Download anyway"></form></body></html>'
            )
            self._send(200, page, "text/html; charset=utf-8")
        elif self.path == "/download?id=abc&confirm=t":
            self._send(200, PAYLOAD)
        elif self.path == "/login":
            self._send(200, b"<html><p>sign in</p></html>", "text/html")
        else:
            self._send(404, b"no")


@pytest.fixture(scope="module")
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def test_download_with_checksum(server, tmp_path):
    out = download_file(f"{server}/file", tmp_path / "m.pth", sha256=SHA, log=lambda m: None)
    assert out.read_bytes() == PAYLOAD
    assert [p.name for p in tmp_path.iterdir()] == ["m.pth"]


def test_transient_failures_are_retried(server, tmp_path):
    lines: list[str] = []
    download_file(f"{server}/flaky1", tmp_path / "m.pth", backoff=0.01, log=lines.append)
    assert sum("failed" in line for line in lines) == 2
    assert (tmp_path / "m.pth").read_bytes() == PAYLOAD


def test_drive_confirmation_page_is_followed(server, tmp_path):
    assert main(["download-checkpoint", "--url", f"{server}/uc?export=download&id=abc",
                 "--out", str(tmp_path / "m.pth"), "--sha256", SHA]) == 0  # fmt: skip
    assert (tmp_path / "m.pth").read_bytes() == PAYLOAD


def test_wrong_checksum_leaves_nothing(server, tmp_path):
    with pytest.raises(DownloadError, match="does not match"):
        download_file(f"{server}/file", tmp_path / "m.pth", sha256="0" * 64, log=lambda m: None)
    assert not list(tmp_path.iterdir())


def test_web_page_instead_of_file_is_refused(server, tmp_path):
    with pytest.raises(DownloadError, match="web page"):
        download_file(f"{server}/login", tmp_path / "m.pth", log=lambda m: None)


def test_offline_failure_says_how_to_do_it_by_hand(tmp_path, capsys):
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/uc?id=x"
    out = tmp_path / "resources" / "m.pth"
    code = main(["download-checkpoint", "--url", url, "--out", str(out), "--retries", "2"])
    assert code == 1
    err = capsys.readouterr().err
    assert url in err and "by hand" in err and str(out) in err and "after 2 tries" in err
    assert not out.exists()
