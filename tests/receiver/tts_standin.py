"""A small stand-in TTS component run under real supervisord in the receiver tests.

`--role web` answers /health only when its upstream (the inference stand-in) is healthy,
like a web front that depends on the inference engine. Faults live in memory, so a restart
clears them; SIGUSR1 counts a hot reload and clears the web front's own fault.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

STATE = {"fault": "", "reloads": 0}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--role", choices=["web", "inference"], required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", default="")
    args = parser.parse_args()

    def on_usr1(signum, frame):
        STATE["reloads"] += 1
        STATE["fault"] = ""
        print("SIGUSR1: hot reload, model kept", flush=True)

    signal.signal(signal.SIGUSR1, on_usr1)

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def _send(self, code, body):
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            if self.path == "/stats":
                return self._send(200, {"pid": os.getpid(), "reloads": STATE["reloads"], "fault": STATE["fault"]})
            if self.path == "/health":
                if STATE["fault"]:
                    return self._send(503, {"status": STATE["fault"]})
                if args.upstream:
                    try:
                        with urllib.request.urlopen(args.upstream + "/health", timeout=2) as r:
                            if r.status != 200:
                                return self._send(503, {"status": "upstream"})
                    except Exception:
                        return self._send(503, {"status": "upstream down"})
                return self._send(200, {"status": "ok"})
            self._send(404, {})

        def do_POST(self):
            length = int(self.headers.get("Content-Length", 0))
            body = json.loads(self.rfile.read(length) or b"{}")
            if self.path == "/admin/fault":
                STATE["fault"] = body.get("fault", "")
                return self._send(200, {"fault": STATE["fault"]})
            self._send(404, {})

    ThreadingHTTPServer(("127.0.0.1", args.port), Handler).serve_forever()


if __name__ == "__main__":
    main()
