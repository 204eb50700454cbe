"""`tts-sentinel exporter`: the HTTP face of the exporter.

GET /metrics (logs, probes, GPU, process manager, self), GET /probe?module=NAME[&fresh=1] (one probe now, with
a fresh registry, as blackbox_exporter does), GET /healthz, GET /evidence (failed probes'
clips, checks and plots: exporter/evidence_http.py).

Anyone who reaches the port can ask for /probe, and a synthesis probe is a GPU job on the
service: overlapping requests share one run (ProbeScheduler.run_shared), at most
MAX_PROBE_REQUESTS wait for one at a time (429 beyond), and the server runs at most
MAX_HANDLER_THREADS handlers (503 beyond), so a flood cannot pile up threads or GPU work.
"""

from __future__ import annotations

import logging
import os
import socket
import stat
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Info, generate_latest

from tts_sentinel import __version__
from tts_sentinel.exporter.config import ExporterConfig
from tts_sentinel.exporter.evidence import EvidenceStore, attach_evidence, detach_evidence
from tts_sentinel.exporter.evidence_http import evidence_answer
from tts_sentinel.exporter.gpu import GpuCollector
from tts_sentinel.exporter.logs.pipeline import LogPipeline
from tts_sentinel.exporter.probes.scheduler import ProbeScheduler
from tts_sentinel.exporter.processes.collector import ProcessCollector

log = logging.getLogger("tts_sentinel.exporter")
MAX_HANDLER_THREADS = 32
MAX_PROBE_REQUESTS = 8
_BUSY = (
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\nRetry-After: 1\r\n"
    b"Connection: close\r\nContent-Length: 46\r\n\r\nthe exporter is busy; retry in a second or so\n"
)


def private_state_dir(path: Path) -> None:
    """Create `path` 0700 whatever the umask; tighten it and the files in it when we own them.

    The state holds log offsets and positions of logs that may carry users' TTS input text.
    """
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    uid = os.geteuid()
    st = path.stat()
    if st.st_uid != uid:
        if stat.S_IMODE(st.st_mode) & 0o077:
            log.warning("state_dir %s belongs to uid %s and others may read it; it is not ours to chmod",
                        path, st.st_uid)
        return
    if stat.S_IMODE(st.st_mode) != 0o700:
        path.chmod(0o700)
    with os.scandir(path) as entries:
        for entry in entries:
            est = entry.stat(follow_symlinks=False)
            if stat.S_ISREG(est.st_mode) and est.st_uid == uid and stat.S_IMODE(est.st_mode) & 0o077:
                fd = os.open(entry.path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
                try:
                    os.fchmod(fd, 0o600)
                finally:
                    os.close(fd)


class BoundedHTTPServer(ThreadingHTTPServer):
    """ThreadingHTTPServer with at most `max_threads` handler threads; the rest get a 503 at once."""

    daemon_threads = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler], max_threads: int) -> None:
        self._slots = threading.BoundedSemaphore(max_threads)
        super().__init__(address, handler)

    def process_request(self, request: socket.socket, client_address: tuple[str, int]) -> None:
        if not self._slots.acquire(blocking=False):
            _answer_busy(request)
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request: socket.socket, client_address: tuple[str, int]) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()


def _answer_busy(request: socket.socket) -> None:
    # Never block the accept loop: take what the client sent so far (closing over unread data
    # would reset the connection before it reads the answer), then a short 503.
    try:
        request.setblocking(False)
        try:
            request.recv(65536)
        except BlockingIOError:
            pass
        request.settimeout(0.5)
        request.sendall(_BUSY)
    except OSError:
        pass


class Exporter:
    """Owns the registry and the background parts; serves them over HTTP."""

    def __init__(self, config: ExporterConfig) -> None:
        self.config = config
        self.registry = CollectorRegistry()
        Info("tts_exporter_build", "TTS Sentinel exporter version.", registry=self.registry).info(
            {"version": __version__}
        )
        self.gpu = GpuCollector(config.gpu)
        self.registry.register(self.gpu)
        self.processes = ProcessCollector(config.processes)
        self.registry.register(self.processes)
        private_state_dir(config.state_dir)
        self.logs = LogPipeline(config.logs, self.registry, config.state_dir)
        self.probes = ProbeScheduler(config.probes, self.registry)
        self.evidence = EvidenceStore(config.evidence, config.state_dir)
        self.registry.register(self.evidence)
        attach_evidence(config.probes, self.evidence)
        self._server: ThreadingHTTPServer | None = None
        self._probe_slots = threading.BoundedSemaphore(MAX_PROBE_REQUESTS)

    def start(self) -> ThreadingHTTPServer:
        """Bind the HTTP port first (a busy port fails before anything starts), then run everything."""
        server = BoundedHTTPServer(
            (self.config.listen_host, self.config.listen_port), self._handler(), MAX_HANDLER_THREADS
        )
        self._server = server
        self.logs.start()
        self.probes.start()
        self.processes.start()
        self.gpu.start()
        threading.Thread(target=server.serve_forever, name="exporter-http", daemon=True).start()
        return server

    def stop(self) -> None:
        """Stop serving, stop probing, persist the log offsets."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        self.probes.stop()
        self.processes.stop()
        detach_evidence(self.config.probes)
        self.gpu.stop()
        self.logs.stop()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        exporter = self

        class Handler(BaseHTTPRequestHandler):
            server_version = f"tts-sentinel-exporter/{__version__}"

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                log.debug("%s " + format, self.address_string(), *args)

            def _send(
                self,
                code: int,
                body: bytes,
                content_type: str = "text/plain; charset=utf-8",
                extra_headers: dict[str, str] | None = None,
            ) -> None:
                self.send_response(code)
                self.send_header("Content-Type", content_type)
                for name, value in (extra_headers or {}).items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                url = urlparse(self.path)
                if url.path == "/metrics":
                    self._send(200, generate_latest(exporter.registry), CONTENT_TYPE_LATEST)
                elif url.path == "/probe":
                    args = parse_qs(url.query)
                    self._probe(args.get("module", [""])[0], args.get("fresh", [""])[0] in ("1", "true"))
                elif url.path == "/healthz":
                    self._send(200, b"ok\n")
                elif url.path == "/evidence" or url.path.startswith("/evidence/"):
                    self._send(*evidence_answer(exporter.evidence, url.path, url.query))
                elif url.path == "/":
                    self._send(200, b"TTS Sentinel exporter: /metrics /probe?module=NAME /healthz /evidence\n")
                else:
                    self._send(404, b"not found: try /metrics, /probe?module=NAME, /healthz or /evidence\n")

            def _probe(self, module: str, fresh: bool = False) -> None:
                names = exporter.probes.module_names()
                if module not in names:
                    msg = f"unknown probe module {module!r}; configured modules: {', '.join(names)}\n"
                    self._send(400, msg.encode())
                    return
                if not exporter._probe_slots.acquire(blocking=False):
                    self._send(
                        429,
                        f"{MAX_PROBE_REQUESTS} /probe requests are already waiting; retry in a few seconds\n".encode(),
                        extra_headers={"Retry-After": "5"},
                    )
                    return
                try:
                    _, body = exporter.probes.probe_now(module, fresh)
                except Exception as exc:  # a probe bug must not kill the exporter
                    log.exception("probe %s failed unexpectedly", module)
                    self._send(500, f"probe {module} failed unexpectedly: {exc}\n".encode())
                    return
                finally:
                    exporter._probe_slots.release()
                self._send(200, body, CONTENT_TYPE_LATEST)

        return Handler
