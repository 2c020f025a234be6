"""What the tests' stand-ins for real HTTP APIs share (the Kubernetes API in
tests/unit/pipeline/kube_api_server.py, the KFP API in kfp_api_server.py): a threading server on a
free local port, started and stopped as a context manager, and a handler that speaks JSON."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class JsonHandler(BaseHTTPRequestHandler):
    """A request handler with JSON in and out, and no access log on stderr."""

    def log_message(self, *args: Any) -> None:  # keep pytest output clean
        pass

    def send_json(self, code: int, body: Any, content_type: str = "application/json") -> None:
        data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def read_json(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        return json.loads(self.rfile.read(length) or b"{}")


class LocalServer:
    """``with Server() as api:`` serves ``self._handler()`` on 127.0.0.1; ``api.url`` is its address."""

    def __init__(self) -> None:
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def _handler(self) -> type[JsonHandler]:
        raise NotImplementedError

    def __enter__(self):  # noqa: ANN204 (returns the subclass)
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
