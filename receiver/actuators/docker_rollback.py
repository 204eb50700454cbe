"""Rolling a container back to an earlier image through the Engine API (no docker CLI, no shell).

A container's image cannot change in place, so the rollback recreates it as `docker compose up`
recreates a service whose image changed: the old container's Config, HostConfig and networks with
the image replaced, created under a temporary name; the old one is stopped and renamed aside
(`NAME-rolledback-TS`, kept stopped for a person, never removed, its restart policy set to `no` so
a daemon restart does not start it beside the new one), the new one takes NAME and starts. The
settings the old image supplied (its Env, Labels, Cmd, ports...) are left out of the new Config so
that the earlier image's own defaults apply, as watchtower does when it recreates. Anonymous
volumes are not carried over (the new container gets fresh ones); binds and named volumes are.

Every step looks at the engine before acting, so a run resumed after the receiver was killed
finds the container it already created (by its temporary name) instead of creating a second.
When create, rename or start fails, the old container gets its name back and is started again.
"""

from __future__ import annotations

import copy
from typing import Any
from urllib.parse import quote

import httpx

from tts_sentinel.managers import DockerConfig
from tts_sentinel.receiver.actuators.base import ActuatorError

KEPT_POLICY = {"Name": "no", "MaximumRetryCount": 0}


class RollbackFailed(ActuatorError):
    """The rollback did not happen; `restored` says whether the old container runs again under its name."""

    def __init__(self, message: str, restored: bool) -> None:
        super().__init__(message)
        self.restored = restored


class DockerEngine:
    """The Engine API calls a rollback makes, on the configured socket and API version."""

    def __init__(self, config: DockerConfig) -> None:
        self.config = config

    def _call(self, method: str, path: str, ok: tuple[int, ...], *, params: dict[str, str] | None = None,
              body: Any = None) -> tuple[int, Any]:
        url = f"/{self.config.api_version}{path}"
        transport = httpx.HTTPTransport(uds=str(self.config.socket))
        try:
            with httpx.Client(transport=transport, base_url="http://docker",
                              timeout=self.config.timeout_seconds) as client:
                resp = client.request(method, url, params=params, json=body)
        except httpx.HTTPError as exc:
            raise ActuatorError(f"Docker engine at {self.config.socket} unreachable: {exc}") from None
        try:
            data = resp.json() if resp.content else None
        except ValueError:
            data = None
        if resp.status_code in ok:
            return resp.status_code, data
        message = data.get("message", resp.text) if isinstance(data, dict) else resp.text
        raise ActuatorError(f"{method} {url} -> {resp.status_code}: {str(message)[:300]}")

    def inspect(self, container: str) -> dict[str, Any] | None:
        """GET /containers/{id}/json; None when there is no such container (404)."""
        code, data = self._call("GET", f"/containers/{quote(container, safe='')}/json", (200, 404))
        return data if code == 200 else None

    def image(self, name: str) -> dict[str, Any] | None:
        """GET /images/{name}/json (an id or repo:tag, slashes kept as docker-py sends them); None on 404."""
        code, data = self._call("GET", f"/images/{quote(name, safe='/:')}/json", (200, 404))
        return data if code == 200 else None

    def create(self, name: str, body: dict[str, Any]) -> str:
        """POST /containers/create?name=NAME; the new container's id (201)."""
        _code, data = self._call("POST", "/containers/create", (201,), params={"name": name}, body=body)
        return str(data["Id"])

    def connect(self, network: str, container: str, endpoint: dict[str, Any]) -> None:
        """POST /networks/{id}/connect: one more network (API < 1.44 creates with one)."""
        self._call("POST", f"/networks/{quote(network, safe='')}/connect", (200,),
                   body={"Container": container, "EndpointConfig": endpoint})

    def start(self, container: str) -> None:
        """POST /containers/{id}/start; 304 (already running) is the wanted state."""
        self._call("POST", f"/containers/{quote(container, safe='')}/start", (204, 304))

    def stop(self, container: str) -> None:
        """POST /containers/{id}/stop?t=STOP_TIMEOUT; 304 (already stopped) is the wanted state."""
        self._call("POST", f"/containers/{quote(container, safe='')}/stop", (204, 304),
                   params={"t": str(self.config.stop_timeout_seconds)})

    def restart_policy(self, container: str, policy: dict[str, Any]) -> None:
        """POST /containers/{id}/update with a RestartPolicy (docker update --restart)."""
        self._call("POST", f"/containers/{quote(container, safe='')}/update", (200,), body={"RestartPolicy": policy})

    def rename(self, container: str, name: str) -> None:
        """POST /containers/{id}/rename?name=NEW (409 when NEW is taken)."""
        self._call("POST", f"/containers/{quote(container, safe='')}/rename", (204,), params={"name": name})


def image_of(config: DockerConfig, container: str) -> dict[str, str]:
    """The image a container runs: its immutable id (`Image`) and the reference it was created from."""
    info = DockerEngine(config).inspect(container)
    if info is None:
        raise ActuatorError(f"no container {container} on the Docker engine at {config.socket}")
    return {"id": str(info["Image"]), "ref": str((info.get("Config") or {}).get("Image") or "")}


def create_body(old: dict[str, Any], old_image: dict[str, Any], image: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The create request for `old` with `image` (its body, and the networks to connect after it).

    Inspect shows the container's Config merged with its image's defaults; what equals the old
    image's default is dropped so the engine fills in the defaults of the image rolled back to.
    """
    config = copy.deepcopy(old.get("Config") or {})
    host = copy.deepcopy(old.get("HostConfig") or {})
    defaults = old_image.get("Config") or {}
    for key in ("WorkingDir", "User", "StopSignal", "Healthcheck"):
        if key in config and config[key] == defaults.get(key):
            del config[key]
    if config.get("Entrypoint") == defaults.get("Entrypoint"):
        config.pop("Entrypoint", None)
        if config.get("Cmd") == defaults.get("Cmd"):
            config.pop("Cmd", None)
    image_env = set(defaults.get("Env") or [])
    config["Env"] = [e for e in config.get("Env") or [] if e not in image_env]
    image_labels = defaults.get("Labels") or {}
    config["Labels"] = {k: v for k, v in (config.get("Labels") or {}).items() if image_labels.get(k) != v}
    config["Volumes"] = {k: v for k, v in (config.get("Volumes") or {}).items()
                         if k not in (defaults.get("Volumes") or {})}
    ports = {p: {} for p in config.get("ExposedPorts") or {} if p not in (defaults.get("ExposedPorts") or {})}
    ports.update({p: {} for p in host.get("PortBindings") or {}})  # a published port must be exposed
    config["ExposedPorts"] = ports
    mode = str(host.get("NetworkMode") or "")
    if config.get("Hostname") == old["Id"][:12] or mode.startswith("container:"):
        config.pop("Hostname", None)  # the engine's default (the short id) or the other container's
    # Legacy links read back as "/db:/NAME/alias"; create takes "db:alias".
    host["Links"] = [f"{link.split(':', 1)[0]}:{link.rsplit('/', 1)[-1]}" for link in host.get("Links") or []] or None
    config["Image"] = image
    endpoints: dict[str, Any] = {}
    for network, settings in ((old.get("NetworkSettings") or {}).get("Networks") or {}).items():
        endpoint = {k: settings[k] for k in ("IPAMConfig", "Links", "DriverOpts") if settings.get(k)}
        aliases = [a for a in settings.get("Aliases") or [] if a != old["Id"][:12]]  # the old id's alias
        if aliases:
            endpoint["Aliases"] = aliases
        endpoints[network] = endpoint
    primary = mode if mode in endpoints else next(iter(endpoints), None)
    body = {**config, "HostConfig": host,
            "NetworkingConfig": {"EndpointsConfig": {primary: endpoints[primary]} if primary else {}}}
    return body, {k: v for k, v in endpoints.items() if k != primary}


class ContainerRollback:
    """Carries out one rollback plan (from rollback.py) on the engine; safe to run again after a kill."""

    def __init__(self, config: DockerConfig) -> None:
        self.engine = DockerEngine(config)

    def run(self, plan: dict[str, Any]) -> str:
        """Recreate plan['container'] from plan['image']; what it did, or RollbackFailed."""
        name, kept, want = plan["container"], plan["old_name"], plan["image"]
        old = self.engine.inspect(plan["old_id"])
        new = self._created(plan)
        if old is None:
            if new is not None and _name(new) == name:
                self.engine.start(new["Id"])
                return f"{name} already runs {_ref(want)}; the old container is gone (removed by hand?)"
            raise RollbackFailed(f"container {plan['old_id'][:12]} (the old {name}) is gone and no rolled-back "
                                 f"container stands in its place: check `docker ps -a` by hand", restored=False)
        if new is None:
            new = self._create(old, plan)
        elif new["Image"] != want["id"]:
            raise RollbackFailed(f"container {_name(new)} runs image {new['Image'][:19]}, not {_ref(want)}: "
                                 "not ours, stopping here", restored=False)
        try:
            self.engine.stop(old["Id"])
            self.engine.restart_policy(old["Id"], KEPT_POLICY)
            if _name(old) == name:
                self.engine.rename(old["Id"], kept)
            if _name(new) != name:
                self.engine.rename(new["Id"], name)
            self.engine.start(new["Id"])
        except ActuatorError as exc:
            self._bring_back(plan, old["Id"], new["Id"], exc)
        return (f"recreated {name} from {_ref(want)} (was {_ref(plan.get('from_image') or {})}); the old container "
                f"is kept, stopped (restart policy no), as {kept} for a person to inspect or remove (docker rm {kept})")

    def _created(self, plan: dict[str, Any]) -> dict[str, Any] | None:
        """The container an earlier run of this plan created: under the temporary name, or already renamed."""
        new = self.engine.inspect(plan["temp_name"])
        if new is None:
            at_name = self.engine.inspect(plan["container"])
            if at_name is not None and at_name["Id"] != plan["old_id"] and at_name["Image"] == plan["image"]["id"]:
                new = at_name
        return new

    def _create(self, old: dict[str, Any], plan: dict[str, Any]) -> dict[str, Any]:
        want = plan["image"]
        old_image = self.engine.image(old["Image"])
        if old_image is None:
            raise RollbackFailed(f"the image {old['Image'][:19]} of {plan['container']} cannot be read, so its "
                                 "defaults cannot be told from the container's own settings; nothing changed",
                                 restored=True)
        # Prefer the tag (what `docker ps` shows) when it still names the recorded image; the id otherwise.
        tagged = self.engine.image(want["ref"]) if want.get("ref") else None
        image = want["ref"] if tagged is not None and tagged.get("Id") == want["id"] else want["id"]
        body, more_networks = create_body(old, old_image, image)
        new_id = None
        try:
            new_id = self.engine.create(plan["temp_name"], body)
            for network, endpoint in more_networks.items():
                self.engine.connect(network, new_id, endpoint)
        except ActuatorError as exc:
            self._bring_back(plan, old["Id"], new_id, exc)
        created = self.engine.inspect(new_id or plan["temp_name"])
        if created is None:
            raise RollbackFailed(f"created {plan['temp_name']} but the engine no longer knows it", restored=True)
        return created

    def _bring_back(self, plan: dict[str, Any], old_id: str, new_id: str | None, why: ActuatorError) -> None:
        """The old container under its name and running again; always raises RollbackFailed."""
        name, temp = plan["container"], plan["temp_name"]
        try:
            new = self.engine.inspect(new_id) if new_id else None
            if new is not None:
                self.engine.stop(new["Id"])
                self.engine.restart_policy(new["Id"], KEPT_POLICY)  # kept for a person, never started by itself
                if _name(new) == name:
                    self.engine.rename(new["Id"], temp)
            old = self.engine.inspect(old_id)
            if old is None:
                raise ActuatorError(f"the old container {old_id[:12]} is gone")
            if _name(old) != name:
                self.engine.rename(old_id, name)
            if (old.get("HostConfig") or {}).get("RestartPolicy") != plan["restart_policy"]:
                self.engine.restart_policy(old_id, plan["restart_policy"])
            self.engine.start(old_id)
        except ActuatorError as again:
            raise RollbackFailed(f"rollback of {name} failed ({why}) and bringing the old container back failed "
                                 f"too ({again}): fix it by hand (docker ps -a)", restored=False) from None
        kept = f"; the new container is kept, stopped (restart policy no), as {temp}" if new is not None else ""
        raise RollbackFailed(f"rollback of {name} to {_ref(plan['image'])} failed: {why}; the old container "
                             f"runs again as {name}{kept}", restored=True) from None


def _name(info: dict[str, Any]) -> str:
    return str(info.get("Name") or "").lstrip("/")


def _ref(image: dict[str, Any]) -> str:
    ref, ident = image.get("ref") or "", str(image.get("id") or "")[:19]
    return f"{ref} ({ident})" if ref else ident or "an unknown image"
