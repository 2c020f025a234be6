"""A small real HTTP server speaking the part of the Kubernetes REST API that ``JobRunner`` uses.

No cluster runs on the test machine, so this stands in for the API server (the opt-in kind test
talks to a real one). The real ``kubernetes`` client talks to it over HTTP: create / get / delete
of TrainJobs, PyTorchJobs and RayJobs, list pods by label selector, read pod logs. Created objects
are validated against the upstream CRDs vendored in tests/fixtures/crds (support.crds: defaults,
types, list-map keys, CEL rules) and refused with the API server's 422 Status; unknown fields are
refused with 400 BadRequest when the request asks for ``fieldValidation=Strict`` (what ``JobRunner``
sends) and kept otherwise (a real server prunes them). Each GET of a job advances a scripted status sequence; pods and their log
lines appear with the steps.
"""

from __future__ import annotations

import copy
import re
import threading
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

from support.crds import Crd, vendored_crds
from support.local_http import JsonHandler, LocalServer
from support.structural_schema import Problem


def load_crds() -> dict[str, Crd]:
    """The namespaced job kinds the server serves (storage versions of the vendored CRDs), by plural."""
    return {crd.plural: crd for crd in vendored_crds().values() if crd.kind in ("TrainJob", "PyTorchJob", "RayJob") and crd.storage}


def validation_problems(obj: Any, crd: Crd) -> list[Problem]:
    """What the API server would refuse (``invalid`` / ``rule``) or prune (``unknown``) in ``obj``."""
    problems = []
    if obj.get("apiVersion") != crd.api_version:
        problems.append(Problem("apiVersion", f"must be {crd.api_version}"))
    if obj.get("kind") != crd.kind:
        problems.append(Problem("kind", f"must be {crd.kind}"))
    return problems + crd.schema.problems(obj)


def validation_errors(obj: Any, crd: Crd) -> list[str]:
    """:func:`validation_problems` as text, unknown fields included (strict field validation)."""
    return [str(p) for p in validation_problems(obj, crd)]


@dataclass
class Script:
    """What happens to one job: a status per GET (the last repeats), pods and log lines by step."""

    statuses: list[dict[str, Any]]
    pods: list[dict[str, Any]] = field(default_factory=list)  # {"name", "labels", "step", "phase", "container_statuses"}
    logs: dict[str, list[tuple[int, str]]] = field(default_factory=dict)  # pod -> [(step, line)]


def _status(code: int, reason: str, message: str) -> dict[str, Any]:
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message, "reason": reason, "code": code}


class KubeApiServer(LocalServer):
    """Start with ``with KubeApiServer() as api:``; ``api.url`` is the host for the client."""

    def __init__(self) -> None:
        self.crds = load_crds()
        self.objects: dict[tuple[str, str, str], dict[str, Any]] = {}
        self.scripts: dict[str, Script] = {}
        self.steps: dict[tuple[str, str, str], int] = {}
        self.created: list[dict[str, Any]] = []
        self.deleted: list[tuple[str, str, str]] = []
        self.requests: list[str] = []
        self.on_create: Any = None  # called with each created object (a stand-in for the job's work)
        self.lock = threading.Lock()
        super().__init__()

    def script(self, name: str, script: Script) -> None:
        """Set what happens to the job ``name`` once it is created."""
        self.scripts[name] = script

    def api_client(self) -> Any:
        from kubernetes import client

        cfg = client.Configuration()
        cfg.host = self.url
        return client.ApiClient(cfg)

    # -- request handling ---------------------------------------------------------------------
    def _handler(self) -> type[JsonHandler]:
        server = self

        class Handler(JsonHandler):
            def do_POST(self) -> None:
                server.requests.append(f"POST {self.path}")
                parts = urlsplit(self.path)
                m = re.fullmatch(r"/apis/([^/]+)/([^/]+)/namespaces/([^/]+)/([^/?]+)", parts.path)
                if not m:
                    return self.send_json(404, _status(404, "NotFound", f"the server could not find the requested resource ({self.path})"))
                group, version, ns, plural = m.groups()
                crd = server.crds.get(plural)
                if crd is None or (crd.group, crd.version) != (group, version):
                    return self.send_json(404, _status(404, "NotFound", "the server could not find the requested resource"))
                obj = self.read_json()
                problems = validation_problems(obj, crd)
                name = (obj.get("metadata") or {}).get("name", "")
                strict = parse_qs(parts.query).get("fieldValidation", [""])[0] == "Strict"
                errors = [str(p) for p in problems if p.kind != "unknown"]
                if errors:
                    return self.send_json(422, _status(422, "Invalid", f'{crd.kind}.{crd.group} "{name}" is invalid: ' + "; ".join(errors)))
                unknown = [f'unknown field "{p.path}"' for p in problems if p.kind == "unknown"]
                if strict and unknown:
                    return self.send_json(400, _status(400, "BadRequest", "strict decoding error: " + ", ".join(unknown)))
                key = (plural, ns, name)
                with server.lock:
                    if key in server.objects:
                        return self.send_json(409, _status(409, "AlreadyExists", f'{plural}.{group} "{name}" already exists'))
                    obj = copy.deepcopy(obj)
                    obj["metadata"].update({"uid": str(uuid.uuid4()), "creationTimestamp": "2026-01-01T00:00:00Z"})
                    server.objects[key] = obj
                    server.steps[key] = -1
                    server.created.append(copy.deepcopy(obj))
                if server.on_create is not None:
                    server.on_create(copy.deepcopy(obj))
                self.send_json(201, obj)

            def do_GET(self) -> None:
                server.requests.append(f"GET {self.path}")
                parts = urlsplit(self.path)
                m = re.fullmatch(r"/apis/([^/]+)/([^/]+)/namespaces/([^/]+)/([^/]+)/([^/]+)", parts.path)
                if m:
                    _g, _v, ns, plural, name = m.groups()
                    key = (plural, ns, name)
                    with server.lock:
                        obj = server.objects.get(key)
                        if obj is None:
                            return self.send_json(404, _status(404, "NotFound", f'{plural} "{name}" not found'))
                        script = server.scripts.get(name)
                        if script is not None:
                            server.steps[key] = min(server.steps[key] + 1, len(script.statuses) - 1)
                            obj["status"] = copy.deepcopy(script.statuses[server.steps[key]])
                        return self.send_json(200, obj)
                m = re.fullmatch(r"/api/v1/namespaces/([^/]+)/pods", parts.path)
                if m:
                    selector = parse_qs(parts.query).get("labelSelector", [""])[0]
                    return self.send_json(200, {"kind": "PodList", "apiVersion": "v1", "metadata": {}, "items": self._pods(m.group(1), selector)})
                m = re.fullmatch(r"/api/v1/namespaces/([^/]+)/pods/([^/]+)/log", parts.path)
                if m:
                    return self.send_json(200, self._log(m.group(2)), "text/plain")
                self.send_json(404, _status(404, "NotFound", f"no route for {self.path}"))

            def do_DELETE(self) -> None:
                server.requests.append(f"DELETE {self.path}")
                m = re.fullmatch(r"/apis/([^/]+)/([^/]+)/namespaces/([^/]+)/([^/]+)/([^/]+)", urlsplit(self.path).path)
                if not m:
                    return self.send_json(404, _status(404, "NotFound", "no such route"))
                _g, _v, ns, plural, name = m.groups()
                with server.lock:
                    obj = server.objects.pop((plural, ns, name), None)
                    if obj is None:
                        return self.send_json(404, _status(404, "NotFound", f'{plural} "{name}" not found'))
                    server.deleted.append((plural, ns, name))
                self.send_json(200, {"kind": "Status", "apiVersion": "v1", "status": "Success", "details": {"name": name}})

            def _current_step(self, job: str) -> int:
                steps = [s for (p, ns, n), s in server.steps.items() if n == job]
                return max(steps) if steps else -1

            def _pods(self, namespace: str, selector: str) -> list[dict[str, Any]]:
                wanted = dict(part.split("=", 1) for part in selector.split(",") if "=" in part)
                items = []
                for job, script in server.scripts.items():
                    step = self._current_step(job)
                    for pod in script.pods:
                        if pod.get("step", 0) > step or any(pod["labels"].get(k) != v for k, v in wanted.items()):
                            continue
                        items.append({
                            "metadata": {"name": pod["name"], "namespace": namespace, "labels": pod["labels"]},
                            "status": {"phase": pod.get("phase", "Running"), "containerStatuses": pod.get("container_statuses", [])},
                        })
                return items

            def _log(self, pod: str) -> str:
                for job, script in server.scripts.items():
                    if pod in script.logs:
                        step = self._current_step(job)
                        return "".join(line + "\n" for at, line in script.logs[pod] if at <= step)
                return ""

        return Handler
