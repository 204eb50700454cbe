"""Supervisord actuator: XML-RPC `supervisor.stopProcess/startProcess/signalProcess`.

A password-protected [inet_http_server] gets HTTP basic auth from `username` and `password_file`
in a header, never in the URL (xmlrpc.client would quote a URL's userinfo in its errors).
`url: unix:///run/supervisor.sock` talks to its [unix_http_server] instead, as supervisorctl does:
whoever may open that socket (its `chmod`/`chown`, e.g. 0770 root:supervisor) may act, so the
receiver needs only that group, not root.
"""

from __future__ import annotations

import http.client
import xmlrpc.client

from tts_sentinel.managers import SupervisordConfig, supervisord_proxy
from tts_sentinel.receiver.actuators.base import ActuatorError, component_name, signal_name

# supervisor.xmlrpc.Faults: starting a running or stopping a stopped program is fine for us.
_ALREADY_STARTED = 60
_NOT_RUNNING = 70


class SupervisordActuator:
    """Acts on the programs named in the target's `supervisord` section."""

    kind = "supervisord"

    def __init__(self, config: SupervisordConfig) -> None:
        self.config = config

    def _proxy(self) -> xmlrpc.client.ServerProxy:
        try:
            return supervisord_proxy(self.config)
        except ValueError as exc:
            raise ActuatorError(str(exc)) from None

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
