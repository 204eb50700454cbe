"""FakeDockerDaemon: the Engine API calls a container rollback makes, on a real unix socket.

Answers like dockerd (API docs v1.43): container inspect and create (the image's defaults merged
into the Config as the daemon does, one network at create before API 1.44), start/stop (304 when
already in that state), rename (409 when the name is taken), restart, kill, image inspect by id,
short id or tag, network connect, update (restart policy); 404 {"message": "No such container: X"} / "No such image: X".
State lives here; tests read and change it. `hold(verb)` makes the next such request wait until
`release()` (the daemon then completes it even if the client was killed meanwhile).
"""

from __future__ import annotations

import hashlib
import json
import re
import socketserver
import threading
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlparse

from tests.receiver.fakes import ServedInThread, answer

NAME = re.compile(r"^/?[a-zA-Z0-9][a-zA-Z0-9_.-]+$")
IN_USE = ('Conflict. The container name "/{name}" is already in use by container "{id}". '
          "You have to remove (or rename) that container to be able to reuse that name.")


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


class FakeDockerDaemon(ServedInThread):
    """Containers, images and networks in memory behind the Engine API on `socket_path`."""

    def __init__(self, socket_path: Path, api_version: str = "1.43") -> None:
        self.api_version = tuple(int(p) for p in api_version.split("."))
        self.images: dict[str, dict] = {}
        self.containers: dict[str, dict] = {}
        self.networks = {"bridge", "host", "none"}
        self.requests: list[tuple[str, str, dict]] = []
        self.broken_images: set[str] = set()  # containers of these images fail to start, as a bad OCI spec does
        self._hold: str | None = None
        self.held, self.done, self._release = threading.Event(), threading.Event(), threading.Event()
        self._lock = threading.Lock()
        daemon = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def address_string(self):
                return "unix"

            def _reply(self, code, body=None):
                try:
                    answer(self, code, b"" if body is None else json.dumps(body).encode())
                except OSError:
                    pass  # the client was killed while the daemon worked

            def do_GET(self):
                self._reply(*daemon.handle("GET", self.path, None))

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length)) if length else None
                self._reply(*daemon.handle("POST", self.path, body))

        self.serve(socketserver.ThreadingUnixStreamServer(str(socket_path), Handler))

    # -- what tests set up and read -----------------------------------------------------------------
    def add_image(self, tag: str, **config) -> str:
        """An image tagged `tag` with these Config defaults (Env, Cmd, Labels, ExposedPorts...); its id."""
        image_id = "sha256:" + _digest(tag + json.dumps(config, sort_keys=True))
        self.images[image_id] = {"Id": image_id, "RepoTags": [tag], "RepoDigests": [], "Created": "2026-11-30T10:00:00Z",
                                 "Config": {"Env": [], "Cmd": None, "Entrypoint": None, "Labels": {}, **config}}
        return image_id

    def find(self, ref: str) -> dict | None:
        """A container by id, name or unique id prefix, as dockerd resolves it."""
        if ref in self.containers:
            return self.containers[ref]
        for c in self.containers.values():
            if c["Name"] == "/" + ref.lstrip("/"):
                return c
        matches = [c for cid, c in self.containers.items() if cid.startswith(ref)]
        return matches[0] if len(matches) == 1 else None

    def image(self, ref: str) -> dict | None:
        for image in self.images.values():
            if ref in (image["Id"], image["Id"][7:]) or ref in image["RepoTags"] or \
                    (len(ref) >= 12 and image["Id"][7:].startswith(ref.removeprefix("sha256:"))):
                return image
        return None

    def named(self, name: str) -> dict | None:
        return next((c for c in self.containers.values() if c["Name"] == "/" + name), None)

    def creates(self) -> int:
        return sum(1 for method, path, _ in self.requests if method == "POST" and path == "/containers/create")

    def hold(self, verb: str) -> None:
        self._hold = verb
        self.held.clear()
        self.done.clear()
        self._release.clear()

    def release(self) -> None:
        self._release.set()

    # -- the API ---------------------------------------------------------------------------------------
    def handle(self, method: str, raw_path: str, body) -> tuple[int, dict | None]:
        url = urlparse(raw_path)
        params = {k: v[0] for k, v in parse_qs(url.query).items()}
        m = re.fullmatch(r"/v([0-9.]+)(/.*)", url.path)
        if not m:
            return 404, {"message": "page not found"}
        path = unquote(m.group(2))
        self.requests.append((method, path, params))
        verb = path.rsplit("/", 1)[-1]
        if method == "POST" and verb == self._hold:
            self._hold = None
            self.held.set()
            self._release.wait(30)
            try:
                with self._lock:
                    return self._route(method, path, params, body)
            finally:
                self.done.set()
        with self._lock:
            return self._route(method, path, params, body)

    def _route(self, method, path, params, body):
        if method == "GET" and (m := re.fullmatch(r"/images/(.+)/json", path)):
            image = self.image(m.group(1))
            return (200, image) if image else (404, {"message": f"No such image: {m.group(1)}"})
        if method == "POST" and path == "/containers/create":
            return self._create(params.get("name", ""), body or {})
        if method == "POST" and (m := re.fullmatch(r"/networks/([^/]+)/connect", path)):
            return self._connect(m.group(1), body or {})
        m = re.fullmatch(r"/containers/([^/]+)/(json|start|stop|restart|kill|rename|update)", path)
        if not m:
            return 404, {"message": "page not found"}
        container = self.find(m.group(1))
        if container is None:
            return 404, {"message": f"No such container: {m.group(1)}"}
        verb, state = m.group(2), container["State"]
        if method == "GET" and verb == "json":
            return 200, container
        if verb == "update":  # docker update: only the fields sent change
            if "RestartPolicy" in (body or {}):
                container["HostConfig"]["RestartPolicy"] = body["RestartPolicy"]
            return 200, {"Warnings": []}
        if verb == "start":
            if state["Running"]:
                return 304, None
            if container["Image"] in self.broken_images:
                return 500, {"message": "failed to create task for container: OCI runtime create failed: "
                                        "exec: \"/entrypoint.sh\": stat /entrypoint.sh: no such file or directory"}
            state.update(Status="running", Running=True, StartedAt="2026-12-01T10:00:00Z", Pid=4000 + len(self.requests))
        elif verb == "stop":
            if not state["Running"]:
                return 304, None
            state.update(Status="exited", Running=False, Pid=0, ExitCode=0, FinishedAt="2026-12-01T10:00:01Z")
        elif verb == "restart":
            state.update(Status="running", Running=True)
        elif verb == "kill":
            if not state["Running"]:
                return 409, {"message": f"Container {container['Id']} is not running"}
        elif verb == "rename":
            new = params.get("name", "")
            if not NAME.match(new):
                return 400, {"message": f"Invalid container name ({new}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"}
            if container["Name"] == "/" + new.lstrip("/"):
                return 400, {"message": "Renaming a container with the same name as its current name"}
            if (other := self.named(new.lstrip("/"))) is not None:
                return 409, {"message": "Error when allocating new name: " + IN_USE.format(name=new, id=other["Id"])}
            container["Name"] = "/" + new.lstrip("/")
        return 204, None

    def _create(self, name: str, body: dict):
        if name and not NAME.match(name):
            return 400, {"message": f"Invalid container name ({name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"}
        if name and (other := self.named(name.lstrip("/"))) is not None:
            return 409, {"message": IN_USE.format(name=name.lstrip("/"), id=other["Id"])}
        image = self.image(str(body.get("Image") or ""))
        if image is None:
            return 404, {"message": f"No such image: {body.get('Image')}"}
        endpoints = (body.get("NetworkingConfig") or {}).get("EndpointsConfig") or {}
        if len(endpoints) > 1 and self.api_version < (1, 44):
            return 400, {"message": f"Container cannot be connected to network endpoints: {', '.join(endpoints)}"}
        for network in endpoints:
            if network not in self.networks:
                return 404, {"message": f"network {network} not found"}
        cid = _digest(f"{name}{len(self.containers)}{json.dumps(body, sort_keys=True)}")
        host = body.get("HostConfig") or {}
        config = {k: v for k, v in body.items() if k not in ("HostConfig", "NetworkingConfig")}
        config = _merge(config, image["Config"])
        config.setdefault("Hostname", cid[:12])
        mode = host.get("NetworkMode") or "default"
        networks = {}
        for network, endpoint in (endpoints or {("bridge" if mode == "default" else mode): {}}).items():
            aliases = list(endpoint.get("Aliases") or [])
            if network not in ("bridge", "host", "none"):
                aliases.append(cid[:12])  # API < 1.45 lists the short id among the aliases
            networks[network] = self._endpoint(network, endpoint, aliases, cid)
        self.containers[cid] = {
            "Id": cid, "Created": "2026-12-01T10:00:00Z", "Path": (config.get("Entrypoint") or config.get("Cmd") or [""])[0],
            "Args": [], "Image": image["Id"], "Name": "/" + (name.lstrip("/") or f"auto_{cid[:6]}"), "RestartCount": 0,
            "State": {"Status": "created", "Running": False, "Paused": False, "Restarting": False, "OOMKilled": False,
                      "Dead": False, "Pid": 0, "ExitCode": 0, "Error": "", "StartedAt": "0001-01-01T00:00:00Z",
                      "FinishedAt": "0001-01-01T00:00:00Z"},
            "HostConfig": {"NetworkMode": mode, **host}, "Config": config, "Mounts": [],
            "NetworkSettings": {"Networks": networks}}
        return 201, {"Id": cid, "Warnings": []}

    def _connect(self, network: str, body: dict):
        if network not in self.networks:
            return 404, {"message": f"network {network} not found"}
        container = self.find(str(body.get("Container") or ""))
        if container is None:
            return 404, {"message": f"No such container: {body.get('Container')}"}
        if network in container["NetworkSettings"]["Networks"]:
            return 403, {"message": f"endpoint with name {container['Name'][1:]} already exists in network {network}"}
        endpoint = body.get("EndpointConfig") or {}
        aliases = list(endpoint.get("Aliases") or []) + [container["Id"][:12]]
        container["NetworkSettings"]["Networks"][network] = self._endpoint(network, endpoint, aliases, container["Id"])
        return 200, None

    @staticmethod
    def _endpoint(network: str, endpoint: dict, aliases: list[str], cid: str) -> dict:
        return {"IPAMConfig": endpoint.get("IPAMConfig"), "Links": endpoint.get("Links"), "Aliases": aliases or None,
                "DriverOpts": endpoint.get("DriverOpts"), "NetworkID": _digest(network), "EndpointID": _digest(cid + network),
                "Gateway": "172.18.0.1", "IPAddress": "172.18.0.2", "IPPrefixLen": 16, "MacAddress": "02:42:ac:12:00:02"}


def _merge(config: dict, image: dict) -> dict:
    """dockerd's merge of the image's Config into the create request's (daemon/create.go)."""
    merged = dict(config)
    env = list(merged.get("Env") or [])
    keys = {e.split("=", 1)[0] for e in env}
    merged["Env"] = env + [e for e in image.get("Env") or [] if e.split("=", 1)[0] not in keys]
    merged["Labels"] = {**(image.get("Labels") or {}), **(merged.get("Labels") or {})}
    merged["ExposedPorts"] = {**(image.get("ExposedPorts") or {}), **(merged.get("ExposedPorts") or {})} or None
    merged["Volumes"] = {**(image.get("Volumes") or {}), **(merged.get("Volumes") or {})} or None
    if not merged.get("Entrypoint"):
        merged["Entrypoint"] = image.get("Entrypoint")
        if not merged.get("Cmd"):
            merged["Cmd"] = image.get("Cmd")
    for key in ("WorkingDir", "User", "StopSignal", "Healthcheck"):
        if not merged.get(key) and image.get(key):
            merged[key] = image[key]
    return merged
