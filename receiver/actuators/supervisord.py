"""Supervisord actuator: XML-RPC `supervisor.stopProcess/startProcess/signalProcess`.

A password-protected [inet_http_server] gets HTTP basic auth from `username` and `password_file`
in a header, never in the URL (xmlrpc.client would quote a URL's userinfo in its errors).
`url: unix:///run/supervisor.sock` talks to its [unix_http_server] instead, as supervisorctl does:
whoever may open that socket (its `chmod`/`chown`, e.g. 0770 root:supervisor) may act, so the
receiver needs only that group, not root.
"""

from __future__ import annotations

import base64
import http.client
import socket
import xmlrpc.client

from tts_sentinel.receiver.actuators.base import ActuatorError, component_name, signal_name
from tts_sentinel.receiver.auth import read_secret
from tts_sentinel.receiver.config import SupervisordConfig

# supervisor.xmlrpc.Faults: starting a running or stopping a stopped program is fine for us.
_ALREADY_STARTED = 60
_NOT_RUNNING = 70


class _Transport(xmlrpc.client.Transport):
    """A timeout (xmlrpc.client has none: a hung supervisord must not hang the worker) and basic auth."""

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
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self._path)
        except OSError:
            sock.close()
            raise
        self.sock = sock


class _UnixTransport(_Transport):
    """XML-RPC over supervisord's unix socket (its [unix_http_server])."""

    def __init__(self, path: str, timeout: float, authorization: str | None = None) -> None:
        super().__init__(timeout, authorization)
        self._path = path

    def make_connection(self, host: str) -> http.client.HTTPConnection:  # type: ignore[override]
        return _UnixConnection(self._path, self._timeout)


class SupervisordActuator:
    """Acts on the programs named in the target's `supervisord` section."""

    kind = "supervisord"

    def __init__(self, config: SupervisordConfig) -> None:
        self.config = config

    def _proxy(self) -> xmlrpc.client.ServerProxy:
        authorization = None
        if self.config.username is not None and self.config.password_file is not None:
            try:
                password = read_secret(self.config.password_file, "supervisord password")
            except ValueError as exc:
                raise ActuatorError(str(exc)) from None
            pair = f"{self.config.username}:{password}".encode()
            authorization = "Basic " + base64.b64encode(pair).decode("ascii")
        if self.config.url.startswith("unix://"):
            unix = _UnixTransport(self.config.url.removeprefix("unix://"), self.config.timeout_seconds, authorization)
            return xmlrpc.client.ServerProxy("http://localhost/RPC2", transport=unix, allow_none=True)
        transport = _Transport(self.config.timeout_seconds, authorization)
        return xmlrpc.client.ServerProxy(self.config.url, transport=transport, allow_none=True)

    def program(self, component: str) -> str:
        """The supervisord program name of a component."""
        return component_name(component, self.config.web_program, self.config.inference_program)

    def _call(self, method: str, *args: object) -> object:
        try:
            return getattr(self._proxy().supervisor, method)(*args)
        except xmlrpc.client.Fault as fault:
            if (method == "stopProcess" and fault.faultCode == _NOT_RUNNING) or (
                method == "startProcess" and fault.faultCode == _ALREADY_STARTED
            ):
                return fault.faultString
            raise ActuatorError(f"supervisord {method}{args}: {fault.faultString}") from None
        except xmlrpc.client.ProtocolError as exc:
            if exc.errcode == 401:
                raise ActuatorError(
                    f"supervisord at {self.config.url} refused the credentials (401): check the target's "
                    "supervisord `username` and `password_file` against [inet_http_server]"
                ) from None
            raise ActuatorError(f"supervisord at {self.config.url} answered {exc.errcode} {exc.errmsg}") from None
        except (OSError, http.client.HTTPException) as exc:
            raise ActuatorError(f"supervisord at {self.config.url} unreachable: {exc}") from None

    def stop(self, component: str) -> str:
        """Stop the program and wait until it is stopped."""
        name = self.program(component)
        result = self._call("stopProcess", name, True)
        return f"stopProcess({name}) -> {result}"

    def start(self, component: str) -> str:
        """Start the program and wait until supervisord considers it RUNNING."""
        name = self.program(component)
        result = self._call("startProcess", name, True)
        return f"startProcess({name}) -> {result}"

    def restart(self, component: str) -> str:
        """Stop then start (supervisord has no single restart call over XML-RPC)."""
        return self.stop(component) + "; " + self.start(component)

    def signal(self, component: str, signame: str) -> str:
        """Send a signal to the program's process."""
        name = self.program(component)
        sig = signal_name(signame)
        result = self._call("signalProcess", name, sig[3:])
        return f"signalProcess({name}, {sig[3:]}) -> {result}"
