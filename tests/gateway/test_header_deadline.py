"""A client trickling its request headers cannot hold a connection open (issue 15: header read timeouts)."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import httpx
import pytest
import yaml

from tests.gateway_process import start_gateway_process

pytestmark = pytest.mark.slow


def _config(tmp_path: Path) -> Path:
    cfg = {
        "data": {"dir": str(tmp_path / "data")},
        "gateway": {"header_read_timeout_s": 1.0},
        "providers": [{"name": "sim", "kind": "simulated", "latency_scale": 0}],
        "models": [{"name": "gpt-4o-mini", "provider": "sim"}],
    }
    path = tmp_path / "apex.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _closed_after(sock: socket.socket, trickle: bytes, every_s: float, give_up_s: float) -> float | None:
    """Send ``trickle`` one byte every ``every_s``; seconds until the server closed the connection, or None."""
    start = time.monotonic()
    sock.settimeout(every_s)
    for i in range(len(trickle)):
        try:
            sock.sendall(trickle[i : i + 1])
        except (BrokenPipeError, ConnectionResetError):
            return time.monotonic() - start
        try:
            if sock.recv(4096) == b"":
                return time.monotonic() - start
        except TimeoutError:
            pass
        except ConnectionResetError:
            return time.monotonic() - start
        if time.monotonic() - start > give_up_s:
            return None
    return None


def test_trickled_headers_are_cut_off_and_a_keep_alive_client_is_not(tmp_path):
    gw = start_gateway_process(_config(tmp_path), tmp_path / "gateway.log", "--log-level", "warning")
    try:
        host, port = "127.0.0.1", gw.port
        head = b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n" + b"X-Slow: " + b"a" * 200
        # a first request trickled from the start of the connection
        with socket.create_connection((host, port)) as sock:
            took = _closed_after(sock, head, every_s=0.1, give_up_s=8.0)
        assert took is not None and took < 4.0, took
        # a keep-alive connection: a normal request, then the next one's headers trickled
        with socket.create_connection((host, port)) as sock:
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            sock.settimeout(5)
            assert sock.recv(65536).startswith(b"HTTP/1.1 200")
            time.sleep(1.5)  # idle between requests is keep-alive time, not header time
            took = _closed_after(sock, head, every_s=0.1, give_up_s=8.0)
        assert took is not None and took < 4.0, took
        # a client that takes its time between requests but sends each request promptly keeps its connection
        with httpx.Client(base_url=gw.url, timeout=10) as client:
            assert client.get("/health").status_code == 200
            time.sleep(1.5)
            assert client.get("/health").status_code == 200
    finally:
        gw.stop()
