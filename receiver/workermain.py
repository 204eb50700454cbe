"""The receiver's child processes (receiver/child.py): `python -m tts_sentinel.receiver.workermain FD ROLE`.

Started by the receiver's front only, with one end of a private socket pair as FD: it reads its
start-up there (pickled by its parent: its role, config, token, logging), then
- role "worker" (receiver/split.py): recovers the jobs a crash left `running`, starts a thread per
  target and the incident sweeper, answers `R`, then serves the front's lines until `s` (stop
  after the running jobs);
- role "intake" (receiver/intake_process.py): answers `R`, then admits the front's posts until `s`
  (answer what is queued).
At the end of file (the front is gone) either exits at once, so nothing acts on behalf of a dead
receiver.
"""

from __future__ import annotations

import gc
import logging
import os
import pickle
import signal
import socket
import sys

from tts_sentinel.logsetup import configure_logging
from tts_sentinel.receiver.child import recv_frame, send_frame
from tts_sentinel.receiver.intake import Intake
from tts_sentinel.receiver.intake_process import serve_intake
from tts_sentinel.receiver.priority import worker_priority
from tts_sentinel.receiver.service import ReceiverService

log = logging.getLogger("tts_sentinel.receiver.worker")


def main(argv: list[str]) -> int:
    """Run the child process on the socket whose descriptor is argv[0]."""
    # Ctrl-C and systemd's SIGTERM reach the whole group: the front decides when this one stops.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    sock = socket.socket(fileno=int(argv[0]))
    try:
        kind, payload = recv_frame(sock)
    except (OSError, EOFError):
        return 70
    if kind != b"S":
        return 70
    startup = pickle.loads(payload)  # noqa: S301 - from our own parent, over a socket pair nobody else holds
    configure_logging(startup["log_format"], startup["log_level"])
    if os.getppid() != startup["parent"]:
        return 70  # the front died before we read our start-up
    role = startup.get("role", "worker")
    if role == "worker":  # the intake keeps the front's priority; the jobs and their actions do not
        worker_priority(startup["service"]["config"].worker_nice)
    try:
        service = ReceiverService(**startup["service"], role=role)
        service.start()
    except Exception as exc:  # noqa: BLE001 - the front prints it and exits (or retries, on a respawn)
        log.exception("%s process: start-up failed", role)
        send_frame(sock, b"E", f"{type(exc).__name__}: {exc}".encode())
        return 70
    # As in the front (tts_sentinel/commands/receiver.py): what start-up built lives as long as the
    # process, out of the collector's sight, so a storm's collections do not walk it again and again.
    gc.collect()
    gc.freeze()
    if role == "intake":
        assert isinstance(service.intake, Intake)
        send_frame(sock, b"R", f"pid {os.getpid()}".encode())
        code = serve_intake(sock, service.intake, lambda: list(service.metrics.intake_registry.collect()))
        service.stop()
        return code
    send_frame(sock, b"R", f"pid {os.getpid()}, {len(service.config.targets)} target worker(s)".encode())
    return serve(sock, service)


def serve(sock: socket.socket, service: ReceiverService) -> int:
    """The front's lines until stop or end of file."""
    reader = sock.makefile("rb")
    for raw in reader:
        line = raw.decode("utf-8", "replace").rstrip("\n")
        if line.startswith("w ") and service.workers is not None:
            service.workers.wake(line[2:])
        elif line == "m":
            send_frame(sock, b"M", pickle.dumps(list(service.metrics.runner_registry.collect())))
        elif line == "s":
            if service.stop():  # a job still runs past the grace: as below, left to the next receiver
                service.abandon("worker process: stopping", 0)
            return 0
    log.error("worker process: the receiver's front is gone; exiting without finishing the running jobs "
              "(the next receiver resumes or reports them)")
    # Nor do the actions it started: they would run on, their timeouts unwatched, while the next
    # receiver resumes their jobs and runs the same step again.
    service.abandon("worker process: the front is gone", 75)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
