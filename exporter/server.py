"""`tts-sentinel exporter`: the HTTP face of the exporter.

GET /metrics (logs, probes, GPU, process manager, self), GET /probe?module=NAME (one probe now, with
a fresh registry, as blackbox_exporter does), GET /healthz.
"""

from __future__ import annotations

import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Info, generate_latest

from tts_sentinel import __version__
from tts_sentinel.exporter.config import ExporterConfig
from tts_sentinel.exporter.gpu import GpuCollector
from tts_sentinel.exporter.logs.pipeline import LogPipeline
from tts_sentinel.exporter.probes.scheduler import ProbeScheduler
from tts_sentinel.exporter.processes.collector import ProcessCollector

log = logging.getLogger("tts_sentinel.exporter")


class Exporter:
    """Owns the registry and the background parts; serves them over HTTP."""

    def __init__(self, config: ExporterConfig) -> None:
        self.config = config
        self.registry = CollectorRegistry()
        Info("tts_exporter_build", "TTS Sentinel exporter version.", registry=self.registry).info(
            {"version": __version__}
        )
        self.registry.register(GpuCollector(config.gpu))
        self.processes = ProcessCollector(config.processes)
        self.registry.register(self.processes)
        config.state_dir.mkdir(parents=True, exist_ok=True)
        self.logs = LogPipeline(config.logs, self.registry, config.state_dir)
        self.probes = ProbeScheduler(config.probes, self.registry)
        self._server: ThreadingHTTPServer | None = None

    def start(self) -> ThreadingHTTPServer:
        """Bind the HTTP port first (a busy port fails before anything starts), then run everything."""
        server = ThreadingHTTPServer((self.config.listen_host, self.config.listen_port), self._handler())
        server.daemon_threads = True
        self._server = server
        self.logs.start()
        self.probes.start()
        self.processes.start()
        threading.Thread(target=server.serve_forever, name="exporter-http", daemon=True).start()
        return server

    def stop(self) -> None:
        """Stop serving, stop probing, persist the log offsets."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        self.probes.stop()
        self.processes.stop()
        self.logs.stop()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        exporter = self

        class Handler(BaseHTTPRequestHandler):
            server_version = f"tts-sentinel-exporter/{__version__}"

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                log.debug("%s " + format, self.address_string(), *args)

            def _send(self, code: int, body: bytes, content_type: str = "text/plain; charset=utf-8") -> None:
                self.send_response(code)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                url = urlparse(self.path)
                if url.path == "/metrics":
                    self._send(200, generate_latest(exporter.registry), CONTENT_TYPE_LATEST)
                elif url.path == "/probe":
                    self._probe(parse_qs(url.query).get("module", [""])[0])
                elif url.path == "/healthz":
                    self._send(200, b"ok\n")
                elif url.path == "/":
                    self._send(200, b"TTS Sentinel exporter: /metrics /probe?module=NAME /healthz\n")
                else:
                    self._send(404, b"not found: try /metrics, /probe?module=NAME or /healthz\n")

            def _probe(self, module: str) -> None:
                names = exporter.probes.module_names()
                if module not in names:
                    msg = f"unknown probe module {module!r}; configured modules: {', '.join(names)}\n"
                    self._send(400, msg.encode())
                    return
                try:
                    _, body = exporter.probes.probe_now(module)
                except Exception as exc:  # a probe bug must not kill the exporter
                    log.exception("probe %s failed unexpectedly", module)
                    self._send(500, f"probe {module} failed unexpectedly: {exc}\n".encode())
                    return
                self._send(200, body, CONTENT_TYPE_LATEST)

        return Handler
