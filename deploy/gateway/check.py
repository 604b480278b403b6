"""Run nginx on the gateway's configuration and check the answers it gives
itself (`.ci/run` calls it; needs an `nginx` binary, nothing else).

The configuration is the one in this folder (or the file named as argument). Three things are changed in a
temporary copy so that it runs outside docker-compose: the port it listens on,
and the container names of two services, which point at 127.0.0.1 here: one at
a port where nothing listens (the gateway must answer 502 problem+json), one at
a tiny upstream that answers a 404 of its own (which must pass through as is).
"""

from __future__ import annotations

import http.server
import json
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

CONFIG = Path(__file__).with_name("nginx.conf")
PROBLEM_JSON = "application/problem+json"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Upstream(http.server.BaseHTTPRequestHandler):
    """A service that answers every request with its own 404 problem."""

    def do_GET(self) -> None:  # noqa: N802 - the library's name
        body = json.dumps({"type": "about:blank", "title": "Not Found", "status": 404, "detail": "upstream"}).encode()
        self.send_response(404)
        self.send_header("Content-Type", PROBLEM_JSON)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: object) -> None:
        pass


def get(url: str) -> tuple[int, str, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.headers.get("Content-Type", ""), response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers.get("Content-Type", ""), error.read()


def main(config: Path = CONFIG) -> int:
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    gateway, dead, upstream_port = free_port(), free_port(), free_port()
    upstream = http.server.ThreadingHTTPServer(("127.0.0.1", upstream_port), Upstream)
    threading.Thread(target=upstream.serve_forever, daemon=True).start()
    with tempfile.TemporaryDirectory() as tmp:
        text = config.read_text()
        for old, new in (
            ("listen 8080;", f"listen 127.0.0.1:{gateway};"),
            ("matching    matching;", "matching    127.0.0.1;"),
            ("insights    insights;", "insights    127.0.0.1;"),
        ):
            assert text.count(old) == 1, f"the configuration no longer holds {old!r}"
            text = text.replace(old, new)
        # Each service listens on 8000 in compose; here: the tiny upstream for
        # insights, the dead port for the others.
        assert text.count("proxy_pass http://$binome_service:8000;") == 2
        text = text.replace("proxy_pass http://$binome_service:8000;", "proxy_pass http://$binome_service:$check_port;")
        text = text.replace(
            "http {",
            f"http {{\n    map $path_service $check_port {{ insights {upstream_port}; default {dead}; }}",
            1,
        )
        conf = Path(tmp) / "nginx.conf"
        conf.write_text(text)
        server = subprocess.Popen(
            [nginx, "-p", tmp, "-c", str(conf), "-g", f"daemon off; pid {tmp}/nginx.pid; error_log {tmp}/error.log;"],
            stdout=subprocess.DEVNULL,  # its access log
        )
        try:
            base = f"http://127.0.0.1:{gateway}"
            for _ in range(100):
                try:
                    get(f"{base}/healthz")
                    break
                except OSError:
                    time.sleep(0.1)
            checks = {
                "/healthz": (200, "text/plain", None),
                "/v1/nope/things": (404, PROBLEM_JSON, "No such service."),
                "/nope/docs": (404, PROBLEM_JSON, "No such service."),
                "/": (404, PROBLEM_JSON, "No such service."),
                "/v1/matching/pairs": (502, PROBLEM_JSON, "The service is not answering; retry later."),
                "/v1/insights/anything": (404, PROBLEM_JSON, "upstream"),  # the service's own answer
            }
            failures = []
            for path, (status, content_type, detail) in checks.items():
                got_status, got_type, body = get(base + path)
                ok = got_status == status and got_type.startswith(content_type)
                if ok and detail is not None:
                    document = json.loads(body)
                    ok = document.get("detail") == detail and document.get("status") == status
                print(f"{'ok  ' if ok else 'FAIL'} GET {path}: {got_status} {got_type} {body[:100]!r}")
                if not ok:
                    failures.append(path)
        finally:
            server.terminate()
            server.wait(timeout=10)
            upstream.shutdown()
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]) if len(sys.argv) > 1 else CONFIG))
