"""Supervisord actuator: XML-RPC `supervisor.stopProcess/startProcess/signalProcess`."""

from __future__ import annotations

import http.client
import xmlrpc.client

from tts_sentinel.receiver.actuators.base import ActuatorError, component_name, signal_name
from tts_sentinel.receiver.config import SupervisordConfig

# supervisor.xmlrpc.Faults: starting a running or stopping a stopped program is fine for us.
_ALREADY_STARTED = 60
_NOT_RUNNING = 70


class _TimeoutTransport(xmlrpc.client.Transport):
    """xmlrpc.client has no timeout of its own; a hung supervisord must not hang the worker."""

    def __init__(self, timeout: float) -> None:
        super().__init__()
        self._timeout = timeout

    def make_connection(self, host: str) -> http.client.HTTPConnection:  # type: ignore[override]
        conn = super().make_connection(host)
        conn.timeout = self._timeout
        return conn


class SupervisordActuator:
    """Acts on the programs named in the target's `supervisord` section."""

    kind = "supervisord"

    def __init__(self, config: SupervisordConfig) -> None:
        self.config = config

    def _proxy(self) -> xmlrpc.client.ServerProxy:
        return xmlrpc.client.ServerProxy(
            self.config.url, transport=_TimeoutTransport(self.config.timeout_seconds), allow_none=True
        )

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
        except (OSError, xmlrpc.client.ProtocolError, http.client.HTTPException) as exc:
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
