"""Fakes for the process managers that cannot run here (systemd is not PID 1, no Docker engine, no cluster).

Each answers in the real format: `systemctl show` Key=value lines in systemd's property
order, the Engine API's container inspect JSON on a unix socket, the Kubernetes API's
Deployment and PodList objects. State lives in the fake; tests change it between reads.
"""

from __future__ import annotations

import json
import re
import socketserver
import stat
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

from support import free_port


def _answer(handler: BaseHTTPRequestHandler, code: int, body: dict) -> None:
    data = json.dumps(body).encode()
    handler.send_response(code)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(data)))
    handler.end_headers()
    handler.wfile.write(data)


class _Served:
    def serve(self, server) -> None:
        self.server = server
        threading.Thread(target=server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


# --- systemd -----------------------------------------------------------------------------------

# The properties in the order systemd's bus vtables list them (Service interface, then Unit),
# which is the order `systemctl show -p` prints them in, whatever order -p names them.
SYSTEMD_ORDER = ["Result", "NRestarts", "ExecMainStartTimestampMonotonic", "ExecMainPID", "ExecMainCode",
                 "ExecMainStatus", "LoadState", "ActiveState", "SubState"]
NOT_FOUND = {"Result": "success", "NRestarts": "0", "ExecMainStartTimestampMonotonic": "0", "ExecMainPID": "0",
             "ExecMainCode": "0", "ExecMainStatus": "0", "LoadState": "not-found", "ActiveState": "inactive",
             "SubState": "dead"}

FAKE_SYSTEMCTL = """#!{python}
# FakeSystemctl: `systemctl show -p A,B UNIT` from a JSON state file, in systemd's output format.
import json, sys
state = json.load(open({state!r}))
with open({state!r} + ".calls", "a") as f:
    f.write(json.dumps(sys.argv[1:]) + "\\n")
if state.get("no_bus"):
    print("System has not been booted with systemd as init system (PID 1). Can't operate.", file=sys.stderr)
    print("Failed to connect to bus: Host is down", file=sys.stderr)
    sys.exit(1)
args = sys.argv[1:]
assert args[0] == "show" and args[1] == "-p", args
wanted = args[2].split(",")
unit = state["units"].get(args[3], {not_found!r})
for key in {order!r}:
    if key in wanted:
        print(f"{{key}}={{unit[key]}}")
"""


class FakeSystemctl:
    """An executable `systemctl` whose units live in a JSON file; `calls()` are the argv it got."""

    def __init__(self, directory: Path, now_monotonic_usec: int) -> None:
        self.path = directory / "systemctl"
        self.state_file = directory / "systemd-state.json"
        self.units: dict[str, dict[str, str]] = {}
        self.no_bus = False
        self.mono = now_monotonic_usec
        self.path.write_text(FAKE_SYSTEMCTL.format(python=sys.executable, state=str(self.state_file),
                                                   not_found=NOT_FOUND, order=SYSTEMD_ORDER))
        self.path.chmod(self.path.stat().st_mode | stat.S_IXUSR)
        self.save()

    def save(self) -> None:
        self.state_file.write_text(json.dumps({"units": self.units, "no_bus": self.no_bus}))

    def add_running(self, unit: str, started_usec: int, restarts: int = 0) -> None:
        self.units[unit] = {"Result": "success", "NRestarts": str(restarts),
                            "ExecMainStartTimestampMonotonic": str(started_usec), "ExecMainPID": "4242",
                            "ExecMainCode": "0", "ExecMainStatus": "0", "LoadState": "loaded",
                            "ActiveState": "active", "SubState": "running"}
        self.save()

    def update(self, unit: str, **props: str) -> None:
        self.units[unit].update(props)
        self.save()

    def calls(self) -> list[list[str]]:
        log = Path(str(self.state_file) + ".calls")
        return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


# --- Docker ------------------------------------------------------------------------------------

class FakeDockerEngine(_Served):
    """GET /vX/containers/{name}/json on a unix socket, answering like dockerd's container inspect."""

    def __init__(self, socket_path: Path) -> None:
        self.containers: dict[str, dict] = {}
        engine = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def address_string(self):
                return "unix"

            def do_GET(self):
                m = re.fullmatch(r"/v[0-9.]+/containers/([^/]+)/json", urlparse(self.path).path)
                if not m:
                    return _answer(self, 404, {"message": "page not found"})
                if m.group(1) not in engine.containers:
                    return _answer(self, 404, {"message": f"No such container: {m.group(1)}"})
                return _answer(self, 200, engine.containers[m.group(1)])

        self.serve(socketserver.ThreadingUnixStreamServer(str(socket_path), Handler))

    def add_running(self, name: str, started_at: str, restart_count: int = 0) -> None:
        self.containers[name] = {
            "Id": "f" * 64, "Name": "/" + name, "RestartCount": restart_count,
            "State": {"Status": "running", "Running": True, "Paused": False, "Restarting": False,
                      "OOMKilled": False, "Dead": False, "Pid": 4242, "ExitCode": 0, "Error": "",
                      "StartedAt": started_at, "FinishedAt": "0001-01-01T00:00:00Z"},
            "HostConfig": {"RestartPolicy": {"Name": "unless-stopped", "MaximumRetryCount": 0}},
        }

    def restarting(self, name: str, exit_code: int, finished_at: str) -> None:
        """The container died and its restart policy waits before starting it again."""
        c = self.containers[name]
        c["State"].update(Status="restarting", Running=True, Restarting=True, Pid=0, ExitCode=exit_code,
                          FinishedAt=finished_at)

    def restarted(self, name: str, started_at: str) -> None:
        """The restart policy started it again: RestartCount grows, ExitCode goes back to 0."""
        c = self.containers[name]
        c["RestartCount"] += 1
        c["State"].update(Status="running", Running=True, Restarting=False, Pid=4343, ExitCode=0,
                          StartedAt=started_at)


# --- Kubernetes --------------------------------------------------------------------------------

def k8s_pod(name: str, app: str, restarts: int = 0, *, running_since: str | None = "2026-01-05T10:00:00Z",
            waiting: str | None = None, last_exit: int | None = None, phase: str = "Running") -> dict:
    """A Pod as the API returns it, with one container `tts`."""
    state = {"running": {"startedAt": running_since}} if waiting is None else {
        "waiting": {"reason": waiting, "message": "back-off 40s restarting failed container"}}
    last = {} if last_exit is None else {"terminated": {
        "exitCode": last_exit, "reason": "Error", "startedAt": "2026-01-05T09:58:00Z",
        "finishedAt": "2026-01-05T09:59:00Z", "containerID": "containerd://abc"}}
    return {
        "kind": "Pod", "apiVersion": "v1",
        "metadata": {"name": name, "namespace": "tts", "labels": {"app": app}},
        "status": {"phase": phase, "containerStatuses": [{
            "name": "tts", "ready": waiting is None, "restartCount": restarts, "started": waiting is None,
            "image": "qwen3-tts:1", "imageID": "sha256:0", "containerID": "containerd://abc",
            "state": state, "lastState": last}]},
    }


class FakeKubernetesApi(_Served):
    """GET apps/v1 Deployment and v1 PodList (labelSelector) with bearer-token auth, like the API server."""

    def __init__(self, token: str, namespace: str = "tts") -> None:
        self.deployments: dict[str, dict] = {}  # name -> spec.selector
        self.pods: list[dict] = []
        self.requests: list[str] = []
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        api = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_GET(self):
                url = urlparse(self.path)
                api.requests.append(self.path)
                if self.headers.get("Authorization") != f"Bearer {token}":
                    return _answer(self, 401, {"kind": "Status", "status": "Failure", "message": "Unauthorized",
                                               "reason": "Unauthorized", "code": 401})
                dep = re.fullmatch(rf"/apis/apps/v1/namespaces/{namespace}/deployments/([^/]+)", url.path)
                if dep:
                    name = dep.group(1)
                    if name not in api.deployments:
                        return _answer(self, 404, {"kind": "Status", "status": "Failure", "reason": "NotFound",
                                                   "message": f'deployments.apps "{name}" not found', "code": 404})
                    return _answer(self, 200, {"kind": "Deployment", "apiVersion": "apps/v1",
                                               "metadata": {"name": name, "namespace": namespace},
                                               "spec": {"replicas": 1, "selector": api.deployments[name]}})
                if url.path == f"/api/v1/namespaces/{namespace}/pods":
                    selector = parse_qs(url.query).get("labelSelector", [""])[0]
                    wanted = dict(part.split("=", 1) for part in selector.split(",") if part)
                    items = [p for p in api.pods
                             if all(p["metadata"]["labels"].get(k) == v for k, v in wanted.items())]
                    return _answer(self, 200, {"kind": "PodList", "apiVersion": "v1", "items": items})
                return _answer(self, 404, {"kind": "Status", "message": "the server could not find the resource"})

        self.serve(ThreadingHTTPServer(("127.0.0.1", self.port), Handler))
