"""Loopback HTTP servers for tests that stop cleanly (connections shut, handler threads
joined, sockets closed: no ResourceWarning), and ``RecordingProxy``, a proxy in front of a real
server. The model servers and their fixtures are in ``model_servers``."""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import sys
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

Json = dict[str, Any]


class _Server(ThreadingHTTPServer):
    daemon_threads = False  # server_close() joins the handler threads
    block_on_close = True

    def __init__(self, owner: _LoopbackServer, handler: type[BaseHTTPRequestHandler]) -> None:
        self.owner = owner
        super().__init__(("127.0.0.1", 0), handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hung up (a timed-out call, a stopped proxy) is no error of the
        server's: only other failures are printed."""
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


class _LoopbackServer:
    """An HTTP server on a free loopback port, served by a thread, that stops cleanly: open
    connections are shut, handler threads joined, sockets closed."""

    handler: type[BaseHTTPRequestHandler]

    def __init__(self) -> None:
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None
        self.port = 0
        self.connections = 0  # accepted so far

    def start(self) -> None:
        self._httpd = _Server(self, self.handler)
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    def track(self, sock: socket.socket, add: bool) -> None:
        with self._lock:
            if not add:
                self._sockets.discard(sock)
                return
            self._sockets.add(sock)
            self.connections += 1
            if self.stopping.is_set():  # accepted as stop() began: shut it here
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    def stop(self) -> None:
        """Close the port and every connection; idempotent."""
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        self.stopping.set()
        httpd.shutdown()
        with self._lock:
            open_sockets = list(self._sockets)
        for sock in open_sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        httpd.server_close()
        if self._thread is not None:
            self._thread.join()

    close = stop

    def __enter__(self) -> _LoopbackServer:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Each streamed chunk leaves at once, as from a real model server: with Nagle's algorithm
    # a chunk waits for the ACK of the one before, which the client delays by up to 40 ms.
    disable_nagle_algorithm = True
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.server.owner.track(self.connection, add=True)

    def finish(self) -> None:
        self.server.owner.track(self.connection, add=False)
        with contextlib.suppress(OSError):
            super().finish()

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def read_body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def send_json(self, status: int, body: object) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def start_chunked(self, status: int = 200, content_type: str = "text/event-stream") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

    def write_chunk(self, data: bytes) -> None:
        if data:
            self.wfile.write(b"%X\r\n%s\r\n" % (len(data), data))
            self.wfile.flush()

    def end_chunked(self) -> None:
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def cut(self) -> None:
        """Drop the connection as a crashing server would: no end of body."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)


class RecordingProxy(_LoopbackServer):
    """A proxy on 127.0.0.1 in front of ``upstream`` (a base URL such as
    ``http://127.0.0.1:PORT/v1``). ``url`` is the same base URL through the proxy. Bodies are
    forwarded (after ``rewrite``, a function of the parsed JSON body, if given, and ``delay``
    seconds) and recorded in ``requests``; answers stream back chunk by chunk. ``stop()``
    closes the port and cuts open streams: later calls get connection refused."""

    def __init__(
        self,
        upstream: str,
        *,
        rewrite: Callable[[Json], Json] | None = None,
        delay: float = 0.0,
    ) -> None:
        super().__init__()
        self.handler = _ProxyHandler
        parts = urlsplit(upstream)
        self.upstream_host = parts.hostname or "127.0.0.1"
        self.upstream_port = parts.port or 80
        self.base_path = parts.path.rstrip("/")
        self.rewrite = rewrite
        self.delay = delay
        self.requests: list[Json] = []
        self._upstreams: set[http.client.HTTPConnection] = set()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{self.base_path}"

    def track_upstream(self, connection: http.client.HTTPConnection, add: bool) -> None:
        with self._lock:
            if add:
                self._upstreams.add(connection)
            else:
                self._upstreams.discard(connection)

    def stop(self) -> None:
        self.stopping.set()  # first: a handler connecting after the snapshot below sees it
        with self._lock:
            upstreams = list(self._upstreams)
        for connection in upstreams:  # unblock handlers waiting on the upstream
            if connection.sock is not None:
                with contextlib.suppress(OSError):
                    connection.sock.shutdown(socket.SHUT_RDWR)
        super().stop()

    close = stop

    def __enter__(self) -> RecordingProxy:
        self.start()
        return self


FORWARDED_HEADERS = ("Content-Type", "Authorization", "Accept")


class _ProxyHandler(_Handler):
    @property
    def owner(self) -> RecordingProxy:
        owner = self.server.owner
        assert isinstance(owner, RecordingProxy)
        return owner

    def do_GET(self) -> None:
        self._forward(b"")

    def do_POST(self) -> None:
        self._forward(self.read_body())

    def _forward(self, raw: bytes) -> None:
        proxy = self.owner
        if raw:
            try:
                body: Json = json.loads(raw)
            except ValueError:
                body = {}
            else:
                if proxy.rewrite is not None:
                    body = proxy.rewrite(body)
                    raw = json.dumps(body).encode()
            with proxy._lock:
                proxy.requests.append(body)
        if proxy.stopping.wait(proxy.delay):
            return
        upstream = http.client.HTTPConnection(proxy.upstream_host, proxy.upstream_port, timeout=300)
        proxy.track_upstream(upstream, add=True)
        try:
            headers = {k: v for k in FORWARDED_HEADERS if (v := self.headers.get(k)) is not None}
            upstream.request(self.command, self.path, body=raw or None, headers=headers)
            if proxy.stopping.is_set():
                self.cut()
                return
            response = upstream.getresponse()
            self._relay(response)
        except OSError:
            if not proxy.stopping.is_set():
                try:
                    self.send_json(502, {"error": {"message": "upstream unreachable"}})
                except OSError:
                    self.close_connection = True
            else:
                self.cut()
        finally:
            proxy.track_upstream(upstream, add=False)
            upstream.close()

    def _relay(self, response: http.client.HTTPResponse) -> None:
        content_type = response.getheader("Content-Type", "application/json")
        length = response.getheader("Content-Length")
        if length is not None:
            data = response.read()
            self.send_response(response.status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return
        self.start_chunked(response.status, content_type)
        while data := response.read1(65536):
            self.write_chunk(data)
        self.end_chunked()
