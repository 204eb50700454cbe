"""Fakes for what cannot run here: the Docker engine, systemctl, NVML. Each follows the real interface."""

from __future__ import annotations

import json
import re
import socketserver
import stat
import sys
import threading
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from urllib.parse import parse_qs, urlparse


def answer(handler: BaseHTTPRequestHandler, code: int, body: bytes = b"", content_type: str = "application/json"):
    """Send a complete HTTP response from a BaseHTTPRequestHandler."""
    handler.send_response(code)
    if body:
        handler.send_header("Content-Type", content_type)
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


class ServedInThread:
    """A socketserver serving from a daemon thread; `close()` stops it."""

    def serve(self, server):
        self.server = server
        self.thread = threading.Thread(target=server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class FakeDockerEngine(ServedInThread):
    """Docker Engine API subset on a unix socket: POST /vX/containers/{id}/{start,stop,restart,kill}.

    Answers like dockerd: 204 on success, 304 for start-when-running / stop-when-stopped,
    404 {"message": "No such container: ..."} for an unknown container.
    """

    def __init__(self, socket_path: Path, containers: list[str]) -> None:
        self.socket_path = socket_path
        self.running = {name: True for name in containers}
        self.requests: list[tuple[str, str, dict]] = []
        engine = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def address_string(self):
                return "unix"

            def _answer(self, code, body=None):
                answer(self, code, b"" if body is None else json.dumps(body).encode())

            def do_POST(self):
                url = urlparse(self.path)
                params = {k: v[0] for k, v in parse_qs(url.query).items()}
                m = re.fullmatch(r"/v[0-9.]+/containers/([^/]+)/(start|stop|restart|kill)", url.path)
                if not m:
                    return self._answer(404, {"message": "page not found"})
                name, verb = m.group(1), m.group(2)
                engine.requests.append((verb, name, params))
                if name not in engine.running:
                    return self._answer(404, {"message": f"No such container: {name}"})
                if verb == "start":
                    if engine.running[name]:
                        return self._answer(304)
                    engine.running[name] = True
                elif verb == "stop":
                    if not engine.running[name]:
                        return self._answer(304)
                    engine.running[name] = False
                elif verb == "restart":
                    engine.running[name] = True
                elif verb == "kill":
                    if not engine.running[name]:
                        return self._answer(409, {"message": f"Container {name} is not running"})
                return self._answer(204)

        self.serve(socketserver.ThreadingUnixStreamServer(str(socket_path), Handler))


FAKE_SYSTEMCTL = """#!{python}
# FakeSystemctl: records argv, answers like systemctl (exit 5 for an unknown unit).
import json, sys
with open({log!r}, "a") as f:
    f.write(json.dumps(sys.argv[1:]) + "\\n")
known = {units!r}
if sys.argv[-1] not in known:
    print(f"Failed to {{sys.argv[1]}} {{sys.argv[-1]}}: Unit {{sys.argv[-1]}} not found.", file=sys.stderr)
    sys.exit(5)
"""


def fake_systemctl(directory: Path, units: list[str]) -> tuple[Path, Path]:
    """Write a FakeSystemctl executable; returns (its path, the file where it records argv lines)."""
    log = directory / "systemctl.calls"
    script = directory / "systemctl"
    script.write_text(FAKE_SYSTEMCTL.format(python=sys.executable, log=str(log), units=units))
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script, log


class NVMLError(Exception):
    """Like pynvml.NVMLError: carries the NVML return code."""

    def __init__(self, value):
        super().__init__(value)
        self.value = value


class NVMLError_NoPermission(NVMLError):  # noqa: N801 - pynvml's name
    def __init__(self):
        super().__init__(4)


class _Process:
    """Like pynvml's c_nvmlProcessInfo_t: has .pid and .usedGpuMemory."""

    def __init__(self, pid):
        self.pid = pid
        self.usedGpuMemory = 1 << 30


class FakeNvml:
    """The pynvml functions the receiver uses, same names and signatures, state in memory.

    Power limits in milliwatts; setting a limit needs `root` (NVML_ERROR_NO_PERMISSION otherwise)
    and must lie within the card's constraints (NVML_ERROR_INVALID_ARGUMENT = 2 otherwise).
    """

    NVMLError = NVMLError
    NVMLError_NoPermission = NVMLError_NoPermission

    def __init__(self, gpus=1, min_mw=100_000, max_mw=350_000, default_mw=300_000, root=True):
        self.limits = [
            {"min": min_mw, "max": max_mw, "default": default_mw, "current": default_mw} for _ in range(gpus)
        ]
        self.processes = [[] for _ in range(gpus)]
        self.root = root
        self.initialised = False
        self.set_calls = []

    def nvmlInit(self):
        self.initialised = True

    def nvmlShutdown(self):
        self.initialised = False

    def _check(self):
        if not self.initialised:
            raise NVMLError(1)  # NVML_ERROR_UNINITIALIZED

    def nvmlDeviceGetCount(self):
        self._check()
        return len(self.limits)

    def nvmlDeviceGetHandleByIndex(self, index):
        self._check()
        if not 0 <= index < len(self.limits):
            raise NVMLError(2)  # NVML_ERROR_INVALID_ARGUMENT
        return index

    def nvmlDeviceGetComputeRunningProcesses(self, handle):
        self._check()
        return [_Process(p) for p in self.processes[handle]]

    def nvmlDeviceGetGraphicsRunningProcesses(self, handle):
        self._check()
        return []

    def nvmlDeviceGetPowerManagementLimitConstraints(self, handle):
        self._check()
        return [self.limits[handle]["min"], self.limits[handle]["max"]]

    def nvmlDeviceGetPowerManagementDefaultLimit(self, handle):
        self._check()
        return self.limits[handle]["default"]

    def nvmlDeviceGetPowerManagementLimit(self, handle):
        self._check()
        return self.limits[handle]["current"]

    def nvmlDeviceSetPowerManagementLimit(self, handle, limit):
        self._check()
        if not self.root:
            raise NVMLError_NoPermission()
        lim = self.limits[handle]
        if not lim["min"] <= limit <= lim["max"]:
            raise NVMLError(2)
        self.set_calls.append((handle, limit))
        lim["current"] = limit


class FakeKubernetesApi(ServedInThread):
    """The one Kubernetes API call the actuator makes: PATCH apps/v1 Deployment (strategic merge)."""

    def __init__(self, deployments: list[str], token: str) -> None:
        from http.server import ThreadingHTTPServer

        from support import free_port

        self.patches: list[tuple[str, str, dict]] = []
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        api = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_PATCH(self):
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                m = re.fullmatch(r"/apis/apps/v1/namespaces/([^/]+)/deployments/([^/]+)", self.path)
                if self.headers.get("Authorization") != f"Bearer {token}":
                    code, reply = 401, {"kind": "Status", "message": "Unauthorized"}
                elif not m or m.group(2) not in deployments:
                    code, reply = 404, {"kind": "Status", "message": "deployments.apps not found"}
                elif self.headers.get("Content-Type") != "application/strategic-merge-patch+json":
                    code, reply = 415, {"kind": "Status", "message": "unsupported patch type"}
                else:
                    api.patches.append((m.group(1), m.group(2), body))
                    code, reply = 200, {"kind": "Deployment", "metadata": {"name": m.group(2)}}
                answer(self, code, json.dumps(reply).encode())

        self.serve(ThreadingHTTPServer(("127.0.0.1", self.port), Handler))
