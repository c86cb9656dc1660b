"""A hostile "API server" on 127.0.0.1 for the live-collection robustness tests (stdlib only).

    python hostile_api.py MODE PORTFILE [SECONDS]

MODE: drip (one byte every 2 s, headers included, for SECONDS at most), huge (a 200 reply of 800 MB, sent
only as fast as the client reads it), hugenolen (the same without Content-Length), empty (200 ``{}`` to
everything), notobject (200 ``[1, 2]``), badjson (200 ``{"items": [`` cut short), badshape (200 with items
that are not objects). The port is written to PORTFILE. The server stops by itself after SECONDS (default
60): no test can leave it running.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HUGE = 800 * 1024 * 1024


class Handler(BaseHTTPRequestHandler):
    mode = "empty"
    stop_at = 0.0
    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:  # quiet
        pass

    def _send(self, status: int, body: bytes, length: int | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body) if length is None else length))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        with contextlib.suppress(OSError):  # the client hung up: that is the point of most modes
            self._answer()

    do_POST = do_PATCH = do_DELETE = do_GET  # noqa: N815

    def _answer(self) -> None:
        mode = self.mode
        if mode == "drip":
            reply = (
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n"
                b'{"items": ['
            )
            for byte in reply:
                if time.monotonic() > self.stop_at:
                    return
                self.wfile.write(bytes([byte]))
                self.wfile.flush()
                time.sleep(2.0)
            return
        if mode in ("huge", "hugenolen"):
            if self.path.startswith("/version"):
                self._send(200, b'{"major": "1", "minor": "35"}')
                return
            head = b'{"kind": "List", "items": ['
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            if mode == "huge":
                self.send_header("Content-Length", str(HUGE))
            else:  # the body runs until the connection closes: only counting what is read can stop it
                self.send_header("Connection", "close")
                self.close_connection = True
            self.end_headers()
            self.wfile.write(head)
            block = b" " * (1 << 20)
            sent = len(head)
            while sent < HUGE and time.monotonic() < self.stop_at:
                self.wfile.write(block)
                sent += len(block)
            return
        if mode == "notobject":
            self._send(200, b"[1, 2]")
            return
        if mode == "badjson":
            self._send(200, b'{"items": [')
            return
        if mode == "badshape":
            if self.path.startswith("/version"):
                self._send(200, b'{"major": "1", "minor": "35"}')
                return
            self._send(200, b'{"kind": "List", "items": [1, "x", {"metadata": 5}, null]}')
            return
        self._send(200, b"{}")  # empty


def main() -> None:
    mode, portfile = sys.argv[1], sys.argv[2]
    seconds = float(sys.argv[3]) if len(sys.argv) > 3 else 60.0
    Handler.mode = mode
    Handler.stop_at = time.monotonic() + seconds
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    with open(portfile + ".tmp", "w") as fh:
        fh.write(str(server.server_address[1]))
    os.replace(portfile + ".tmp", portfile)
    threading.Timer(seconds, server.shutdown).start()
    server.serve_forever(poll_interval=0.02)


if __name__ == "__main__":
    main()
