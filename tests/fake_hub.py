"""A local stand-in for the Hugging Face Hub's HTTP API, enough for ``huggingface_hub`` downloads.

Serves model folders under ``/api/models/<id>/revision/<rev>`` (file list with sizes) and
``/<id>/resolve/<rev>/<file>`` (HEAD with commit/etag/size headers, throttled GET), so the
worker's real download path runs with ``HF_ENDPOINT`` pointing here.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlparse


class FakeHub:
    def __init__(self, repos: dict[str, Path], commit: str, bytes_per_second: int = 1_000_000) -> None:
        self.repos = repos
        self.commit = commit
        self.rate = bytes_per_second
        self.requests: list[str] = []
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # quiet
                pass

            def do_HEAD(self) -> None:
                hub.handle(self, body=False)

            def do_GET(self) -> None:
                hub.handle(self, body=True)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> FakeHub:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    def handle(self, req: BaseHTTPRequestHandler, body: bool) -> None:
        path = unquote(urlparse(req.path).path)
        self.requests.append(f"{req.command} {path}")
        for repo_id, folder in self.repos.items():
            api = f"/api/models/{repo_id}/revision/"
            if path.startswith(api):
                files = [{"rfilename": f.name, "size": f.stat().st_size} for f in sorted(folder.iterdir())]
                payload = json.dumps({"id": repo_id, "sha": self.commit, "siblings": files}).encode()
                return self._send(req, 200, payload, {"Content-Type": "application/json"}, body)
            prefix = f"/{repo_id}/resolve/"
            if path.startswith(prefix):
                name = path[len(prefix):].split("/", 1)[1]
                file = folder / name
                if not file.is_file():
                    return self._send(req, 404, b"", {"X-Error-Code": "EntryNotFound"}, body)
                data = file.read_bytes()
                headers = {
                    "X-Repo-Commit": self.commit,
                    "ETag": '"' + hashlib.sha256(data).hexdigest() + '"',
                    "Content-Type": "application/octet-stream",
                }
                return self._send(req, 200, data, headers, body, throttle=True)
        self._send(req, 404, b"", {"X-Error-Code": "RepoNotFound"}, body)

    def _send(self, req: BaseHTTPRequestHandler, status: int, data: bytes, headers: dict[str, str], body: bool,
              throttle: bool = False) -> None:
        req.send_response(status)
        for k, v in headers.items():
            req.send_header(k, v)
        req.send_header("Content-Length", str(len(data)))
        req.end_headers()
        if not body:
            return
        chunk = 32 * 1024
        for i in range(0, len(data), chunk):
            req.wfile.write(data[i: i + chunk])
            if throttle:
                time.sleep(chunk / self.rate)
