"""Workers: one thread per target runs its queued jobs in order (per-target single flight); one
more thread sweeps the incidents (closes quiet ones, pages those not healed in time, also while
their job still runs) and, in its idle time, applies the journal's retention."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from tts_sentinel.procgroup import kill_running_groups, running_groups
from tts_sentinel.receiver.incidents import EXHAUSTED, IncidentBook
from tts_sentinel.receiver.journal import Journal
from tts_sentinel.receiver.runner import JobRunner
from tts_sentinel.receiver.tiers import Tier

log = logging.getLogger(__name__)


class TargetWorkers:
    """Starts a thread per configured target; `wake(target)` when a job was queued for it."""

    def __init__(
        self,
        runner: JobRunner,
        journal: Journal,
        incidents: IncidentBook,
        max_attempts: int = 2,
        poll_seconds: float = 2.0,
        housekeeping: Callable[[], object] | None = None,
    ) -> None:
        self.runner = runner
        self.journal = journal
        self.incidents = incidents
        self.max_attempts = max_attempts
        self.poll_seconds = poll_seconds
        self.housekeeping = housekeeping  # the sweeper's idle work (retention), bounded per call
        self._events = {name: threading.Event() for name in runner.targets}
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def recover(self) -> list[str]:
        """Jobs left `running` by a crash: resume them, or report them (too many attempts, or heavy)."""
        notes = []
        for job in self.journal.jobs(limit=10_000, status="running"):
            if job.attempts >= self.max_attempts or job.tier is Tier.HEAVY:
                why = (
                    f"interrupted by a receiver restart after {job.attempts} attempt(s); "
                    "not resumed: check the target by hand"
                )
                incident = self.journal.incident(job.incident_id)
                page = self.incidents.page(incident, EXHAUSTED, "interrupted", why, job, "interrupted")
                self.journal.update_job(
                    job.id, status="interrupted", result="failure", finished_at=time.time(), note=f"{why}; {page}"
                )
                notes.append(f"job {job.id} reported")
            else:
                self.journal.update_job(
                    job.id,
                    status="queued",
                    note=f"interrupted by a receiver restart (attempt {job.attempts}); resumed",
                )
                notes.append(f"job {job.id} resumed")
        return notes

    def start(self) -> None:
        """Recover interrupted jobs, then start one thread per target."""
        for note in self.recover():
            log.warning("start-up: %s", note)
        for name in self._events:
            t = threading.Thread(target=self._loop, args=(name,), name=f"worker-{name}", daemon=True)
            t.start()
            self._threads.append(t)
        sweeper = threading.Thread(target=self._sweep_loop, name="incident-sweeper", daemon=True)
        sweeper.start()
        self._threads.append(sweeper)

    def dead(self) -> list[str]:
        """Names of workers whose thread is not alive (empty when all run)."""
        return [t.name for t in self._threads if not t.is_alive()]

    def wake(self, target: str) -> None:
        """A job was queued for `target`."""
        event = self._events.get(target)
        if event is not None:
            event.set()

    def stop(self, timeout: float = 10.0) -> list[str]:
        """Stop after the running jobs end; the threads still busy when `timeout` has passed (then
        the caller must `abandon()` their jobs and exit)."""
        self._stop.set()
        for event in self._events.values():
            event.set()
        deadline = time.monotonic() + timeout
        for t in self._threads:
            t.join(max(0.0, deadline - time.monotonic()))
        return [t.name for t in self._threads if t.is_alive()]

    def abandon(self, why: str) -> None:
        """Leave the running jobs to the next receiver, for a process about to exit: each stays
        `running` in the journal (the next start resumes it from its journaled step, or reports
        it), and the commands its action runs are killed, not left acting unwatched beside the
        resumed step. From here no thread journals what the kill did to them."""
        for target in self._events:
            job = self.journal.active_job(target, "running")
            if job is not None:
                log.error("%s: %s job %s on %s left running; the next receiver resumes or reports it",
                          why, job.tier, job.id, target)
        for argv in running_groups():
            log.error("%s: killing the running action %s", why, argv)
        kill_running_groups()

    def _loop(self, target: str) -> None:
        event = self._events[target]
        slots = self.runner.slots
        while not self._stop.is_set():
            failed = None
            with slots.held():  # a turn at the interpreter (receiver/slots.py)
                job = self.journal.active_job(target, "queued")
                if job is not None:
                    try:
                        self.runner.run(job.id, job)
                    except Exception:  # noqa: BLE001 - keep the worker alive; runner journals its own failures
                        log.exception("worker %s: job %s", target, job.id)
                        failed = job
            if job is None:
                event.wait(self.poll_seconds)
                event.clear()
            elif failed is not None:
                time.sleep(self.poll_seconds)

    def _sweep_loop(self) -> None:
        while not self._stop.wait(self.poll_seconds):
            try:
                for note in self.incidents.sweep_all(self._events):
                    log.info("incidents: %s", note)
            except Exception:  # noqa: BLE001 - a failed sweep must not end the loop; it runs again
                log.exception("incident sweep")
            if self.housekeeping is not None:
                try:
                    self.housekeeping()
                except Exception:  # noqa: BLE001 - same: retention runs again on the next loop
                    log.exception("journal retention")
