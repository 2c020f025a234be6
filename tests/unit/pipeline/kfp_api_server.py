"""A small real HTTP server speaking the part of the KFP v2beta1 REST API that ``kfp.Client`` uses
to submit a run: list / create experiments, create a run, get a run. It records each request's
headers and bodies so tests can check what ``polya pipeline submit`` sent."""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import urlsplit

from support.local_http import JsonHandler, LocalServer


class KfpApiServer(LocalServer):
    def __init__(self, final_state: str = "SUCCEEDED") -> None:
        self.final_state = final_state
        self.experiments: dict[str, dict[str, Any]] = {}
        self.runs: dict[str, dict[str, Any]] = {}
        self.requests: list[dict[str, Any]] = []
        super().__init__()

    def _handler(self) -> type[JsonHandler]:
        server = self

        class Handler(JsonHandler):
            def _record(self, body: Any = None) -> None:
                server.requests.append({"method": self.command, "path": self.path, "headers": dict(self.headers), "body": body})

            def do_GET(self) -> None:
                self._record()
                path = urlsplit(self.path).path
                if path == "/apis/v2beta1/experiments":
                    return self.send_json(200, {"experiments": list(server.experiments.values()), "total_size": len(server.experiments)})
                if path.startswith("/apis/v2beta1/runs/"):
                    run = server.runs.get(path.rsplit("/", 1)[-1])
                    if run is None:
                        return self.send_json(404, {"error": "run not found", "code": 5})
                    run["state"] = server.final_state
                    return self.send_json(200, run)
                if path == "/apis/v2beta1/healthz":
                    return self.send_json(200, {"multi_user": False})
                self.send_json(404, {"error": f"no route {path}", "code": 5})

            def do_POST(self) -> None:
                body = self.read_json()
                self._record(body)
                path = urlsplit(self.path).path
                if path == "/apis/v2beta1/experiments":
                    exp = {"experiment_id": str(uuid.uuid4()), "display_name": body["display_name"], "namespace": body.get("namespace", "")}
                    server.experiments[exp["experiment_id"]] = exp
                    return self.send_json(200, exp)
                if path == "/apis/v2beta1/runs":
                    if "pipeline_spec" not in body:
                        return self.send_json(400, {"error": "pipeline_spec is required", "code": 3})
                    run = {"run_id": str(uuid.uuid4()), "display_name": body.get("display_name"), "experiment_id": body.get("experiment_id"), "state": "RUNNING"}
                    server.runs[run["run_id"]] = run
                    return self.send_json(200, run)
                self.send_json(404, {"error": f"no route {path}", "code": 5})

        return Handler
