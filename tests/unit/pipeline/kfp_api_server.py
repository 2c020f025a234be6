"""A small real HTTP server speaking the part of the KFP v2beta1 REST API that ``kfp.Client`` uses
to submit a run: list / create experiments, create a run, get a run. It records each request's
headers and bodies so tests can check what ``polya pipeline submit`` sent."""

from __future__ import annotations

import json
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit


class KfpApiServer:
    def __init__(self, final_state: str = "SUCCEEDED") -> None:
        self.final_state = final_state
        self.experiments: dict[str, dict[str, Any]] = {}
        self.runs: dict[str, dict[str, Any]] = {}
        self.requests: list[dict[str, Any]] = []
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> "KfpApiServer":
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, code: int, body: Any) -> None:
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _record(self, body: Any = None) -> None:
                server.requests.append({"method": self.command, "path": self.path, "headers": dict(self.headers), "body": body})

            def do_GET(self) -> None:
                self._record()
                path = urlsplit(self.path).path
                if path == "/apis/v2beta1/experiments":
                    return self._send(200, {"experiments": list(server.experiments.values()), "total_size": len(server.experiments)})
                if path.startswith("/apis/v2beta1/runs/"):
                    run = server.runs.get(path.rsplit("/", 1)[-1])
                    if run is None:
                        return self._send(404, {"error": "run not found", "code": 5})
                    run["state"] = server.final_state
                    return self._send(200, run)
                if path == "/apis/v2beta1/healthz":
                    return self._send(200, {"multi_user": False})
                self._send(404, {"error": f"no route {path}", "code": 5})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                self._record(body)
                path = urlsplit(self.path).path
                if path == "/apis/v2beta1/experiments":
                    exp = {"experiment_id": str(uuid.uuid4()), "display_name": body["display_name"], "namespace": body.get("namespace", "")}
                    server.experiments[exp["experiment_id"]] = exp
                    return self._send(200, exp)
                if path == "/apis/v2beta1/runs":
                    if "pipeline_spec" not in body:
                        return self._send(400, {"error": "pipeline_spec is required", "code": 3})
                    run = {"run_id": str(uuid.uuid4()), "display_name": body.get("display_name"), "experiment_id": body.get("experiment_id"), "state": "RUNNING"}
                    server.runs[run["run_id"]] = run
                    return self._send(200, run)
                self._send(404, {"error": f"no route {path}", "code": 5})

        return Handler
