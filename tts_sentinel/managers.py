"""How to reach the process manager that runs the TTS service: one model per kind, shared.

The receiver acts through these sections (`receiver.targets[].supervisord`, `.systemd`, `.docker`,
`.kubernetes`), the exporter reads process state through the same ones (`exporter.processes`)
and `doctor` checks them, so a block copied from one place works in the other. Only the
timeouts differ (a read sits inside a scrape; an action may wait for a slow start), so each
user sets its own default. supervisord's XML-RPC proxy with its timeout and basic auth lives
here too: all three talk to the same password-protected [inet_http_server].
"""

from __future__ import annotations

import base64
import http.client
import socket
import xmlrpc.client
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from tts_sentinel.secrets import read_secret
from tts_sentinel.userinfo import has_userinfo


def url_without_credentials(url: str | None, instead: str) -> str | None:
    """`url` unless it carries `user:password@` (which every log line and page would repeat); the
    error says which fields hold credentials instead and never repeats the URL."""
    if url is not None and has_userinfo(url):
        raise ValueError(
            f"the URL carries a user name or password, which would be copied into logs, the journal and "
            f"pages; write it without `user:password@` and use {instead}"
        )
    return url


class SupervisordConfig(BaseModel):
    """How to reach supervisord's XML-RPC interface (HTTP basic auth from `username`/`password_file`)."""

    model_config = ConfigDict(extra="forbid")

    url: str = "http://127.0.0.1:9001/RPC2"
    username: str | None = Field(default=None, description="[inet_http_server] username")
    password_file: Path | None = Field(default=None, description="file holding its password (mode 0600)")
    web_program: str = "tts-webui"
    inference_program: str = "tts-inference"
    timeout_seconds: float = Field(default=30.0, gt=0)

    @field_validator("url")
    @classmethod
    def _no_userinfo(cls, value: str) -> str:
        return url_without_credentials(value, "`username` and `password_file` (a file with mode 0600)") or value

    @model_validator(mode="after")
    def _both_or_neither(self) -> SupervisordConfig:
        if (self.username is None) != (self.password_file is None):
            raise ValueError("set both `username` and `password_file` (supervisord's [inet_http_server]), or neither")
        return self


class SystemdConfig(BaseModel):
    """Units driven or read through `systemctl` (argv only, never a shell)."""

    model_config = ConfigDict(extra="forbid")

    systemctl: str = "systemctl"
    web_unit: str = "qwen3-tts-webui.service"
    inference_unit: str = "qwen3-tts-inference.service"
    timeout_seconds: float = Field(default=60.0, gt=0)


class DockerConfig(BaseModel):
    """Containers driven or read through the Docker Engine API on its unix socket."""

    model_config = ConfigDict(extra="forbid")

    socket: Path = Path("/var/run/docker.sock")
    api_version: str = "v1.43"
    web_container: str = "qwen3-tts-webui"
    inference_container: str = "qwen3-tts-inference"
    stop_timeout_seconds: int = Field(default=10, ge=0)
    timeout_seconds: float = Field(default=60.0, gt=0)


class KubernetesConfig(BaseModel):
    """Deployments restarted (`kubectl rollout restart` equivalent) or read through the API."""

    model_config = ConfigDict(extra="forbid")

    api_url: str = "https://kubernetes.default.svc"
    namespace: str = "default"
    token_file: Path = Path("/var/run/secrets/kubernetes.io/serviceaccount/token")
    ca_file: Path | None = Path("/var/run/secrets/kubernetes.io/serviceaccount/ca.crt")
    web_deployment: str = "qwen3-tts-webui"
    inference_deployment: str = "qwen3-tts-inference"
    timeout_seconds: float = Field(default=30.0, gt=0)

    @field_validator("api_url")
    @classmethod
    def _no_userinfo(cls, value: str) -> str:
        return url_without_credentials(value, "`token_file` (a service-account token, mode 0600)") or value


class _Transport(xmlrpc.client.Transport):
    """A timeout (xmlrpc.client has none: a hung supervisord must not hang a scrape or a worker)
    and an Authorization header (never userinfo in the URL, which xmlrpc.client quotes in errors)."""

    def __init__(self, timeout: float, authorization: str | None = None) -> None:
        super().__init__()
        self._timeout = timeout
        self._authorization = authorization

    def make_connection(self, host: str) -> http.client.HTTPConnection:  # type: ignore[override]
        conn = super().make_connection(host)
        conn.timeout = self._timeout
        return conn

    def get_host_info(self, host: str) -> tuple[str, list[tuple[str, str]], dict[str, str]]:  # type: ignore[override]
        """The host, its extra headers (ours: Authorization) and x509 settings."""
        host, extra, x509 = super().get_host_info(host)
        headers = list(extra or [])
        if self._authorization:
            headers.append(("Authorization", self._authorization))
        return host, headers, x509


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        """Connect to the unix socket instead of a TCP port."""
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self._path)
        except OSError:
            sock.close()
            raise
        self.sock = sock


class _UnixTransport(_Transport):
    """XML-RPC over supervisord's unix socket ([unix_http_server]): only the socket's group is needed."""

    def __init__(self, path: str, timeout: float, authorization: str | None = None) -> None:
        super().__init__(timeout, authorization)
        self._path = path

    def make_connection(self, host: str) -> http.client.HTTPConnection:  # type: ignore[override]
        return _UnixConnection(self._path, self._timeout)


def supervisord_proxy(config: SupervisordConfig, timeout: float | None = None) -> xmlrpc.client.ServerProxy:
    """An XML-RPC proxy to supervisord with the config's timeout (or `timeout`) and credentials;
    `url: unix:///run/supervisor.sock` speaks over the unix socket.

    Raises ValueError with a sentence when the password file is unusable (see `read_secret`).
    """
    authorization = None
    if config.username is not None and config.password_file is not None:
        password = read_secret(config.password_file, "supervisord password")
        pair = f"{config.username}:{password}".encode()
        authorization = "Basic " + base64.b64encode(pair).decode("ascii")
    seconds = config.timeout_seconds if timeout is None else timeout
    if config.url.startswith("unix://"):
        unix = _UnixTransport(config.url.removeprefix("unix://"), seconds, authorization)
        return xmlrpc.client.ServerProxy("http://localhost/RPC2", transport=unix, allow_none=True)
    return xmlrpc.client.ServerProxy(config.url, transport=_Transport(seconds, authorization), allow_none=True)
