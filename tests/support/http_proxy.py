"""A tiny HTTP reverse proxy process for tests: ``python -m tests.support.http_proxy http://host:port/v1``.

It forwards every GET and POST to the target's host (paths as they are), prints ``listening <port>``
once and ``answered <method> <path>`` after each answer it passed on, flushed, so a test can follow
it and kill it: a second "server" in front of the one real vLLM server, at the cost of a process.
"""

from __future__ import annotations

import sys
from http.server import ThreadingHTTPServer

import httpx

from tests.support.local_http import JsonHandler

_PASSED_HEADERS = ("content-type", "authorization")


def main(target: str) -> None:
    client = httpx.Client(base_url=target.removesuffix("/v1"), timeout=600.0)

    class Proxy(JsonHandler):
        def _forward(self, method: str) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            headers = {k: v for k, v in self.headers.items() if k.lower() in _PASSED_HEADERS}
            resp = client.request(method, self.path, content=self.rfile.read(length) if length else None, headers=headers)
            self.send_json(resp.status_code, resp.text, resp.headers.get("content-type", "application/json"))
            print(f"answered {method} {self.path}", flush=True)

        def do_GET(self) -> None:  # noqa: N802
            self._forward("GET")

        def do_POST(self) -> None:  # noqa: N802
            self._forward("POST")

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Proxy)
    print(f"listening {httpd.server_address[1]}", flush=True)
    httpd.serve_forever()


if __name__ == "__main__":
    main(sys.argv[1])
