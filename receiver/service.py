"""The receiver assembled: journal, incidents, admission, runner, workers, retention, metrics. The HTTP
app sits on top."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any, NoReturn

from tts_sentinel.loghistory.config import LogsConfig
from tts_sentinel.receiver.actuators import Actuator, build_actuator
from tts_sentinel.receiver.admission import AlertAdmission
from tts_sentinel.receiver.auth import read_secret
from tts_sentinel.receiver.child import ChildMetrics
from tts_sentinel.receiver.config import ReceiverConfig, TargetConfig
from tts_sentinel.receiver.gpu import NvmlGpu, running_as_root
from tts_sentinel.receiver.incident_links import IncidentLinks
from tts_sentinel.receiver.incidents import IncidentBook
from tts_sentinel.receiver.intake import AsyncAdmissions, Intake
from tts_sentinel.receiver.intake_process import IntakeProcess
from tts_sentinel.receiver.journal import Journal
from tts_sentinel.receiver.metrics import HealedAlertsFiring, JournalSyncs, ReceiverMetrics
from tts_sentinel.receiver.pager import OnCallPager
from tts_sentinel.receiver.retention import JournalRetention
from tts_sentinel.receiver.runner import JobRunner
from tts_sentinel.receiver.split import WorkerProcess
from tts_sentinel.receiver.unmatched import UnmatchedAlerts
from tts_sentinel.receiver.worker import TargetWorkers

# How long the front waits for its worker process past the grace it gives the running jobs: the
# worker's own abandon (journal the jobs left, kill their commands) comes before the front's SIGKILL.
WORKER_EXIT_SECONDS = 10.0


class ReceiverService:
    """Everything behind the HTTP endpoints; `start()` recovers interrupted jobs and starts workers.

    `role`: "all" runs everything in this process (threads); "front", "worker" and "intake" are the
    parts of the split receiver (receiver/split.py, receiver/intake_process.py): the front answers
    HTTP and keeps the journal tidy, its `workers` is the worker process that `split_startup`
    describes and its `intake` the intake process of `intake_startup` (None: an intake thread of
    its own); "worker" runs the jobs and the incident sweeps, "intake" admits the posts
    (`python -m tts_sentinel.receiver.workermain`).

    Raises ValueError (a sentence) when a secret file the config names cannot be used.
    """

    def __init__(
        self,
        config: ReceiverConfig,
        token: str | None,
        *,
        journal_path: Path | None = None,
        logs_config: LogsConfig | None = None,
        gpu: NvmlGpu | None = None,
        now: Callable[[], datetime] | None = None,
        is_root: Callable[[], bool] = running_as_root,
        actuator_factory: Callable[[TargetConfig, dict[str, str]], Actuator] = build_actuator,
        sleep: Callable[[float], None] | None = None,
        role: str = "all",
        split_startup: dict[str, Any] | None = None,
        intake_startup: dict[str, Any] | None = None,
    ) -> None:
        if role not in ("all", "front", "worker", "intake"):
            raise ValueError(f"unknown receiver role {role!r}")
        self.role = role
        self.config = config
        self.token = token
        self.pager = OnCallPager(
            config.alertmanager_peers,
            username=config.alertmanager_username,
            password_file=config.alertmanager_password_file,
            token_file=config.alertmanager_token_file,
        )
        check_secret_files(config, self.pager)
        self.links = receiver_links(config, token)
        self.journal = Journal(journal_path or config.journal_path)
        intake_apart = role == "intake" or (role == "front" and intake_startup is not None)
        self.metrics = ReceiverMetrics(runner_apart=role != "all", intake_apart=intake_apart)
        self.metrics.registry.register(HealedAlertsFiring(self.journal, config.incidents.lookback_seconds))
        self.metrics.intake_registry.register(JournalSyncs(self.journal))
        self.unmatched = UnmatchedAlerts(self.journal, self.metrics.unmatched_alerts)
        self.incidents = IncidentBook(config, self.journal, self.pager, self.links)
        self.admission = AlertAdmission(config, self.journal, self.incidents, self.unmatched, logs_config)
        self.retention = JournalRetention(
            self.journal, config.retention_days * 86400.0, config.idempotency_retention_seconds
        )
        self.workers: TargetWorkers | WorkerProcess | None = None
        self.intake: AsyncAdmissions
        if role == "intake":
            # The front remembers the keys on disk and wakes the worker process (the answers carry both).
            self.intake = Intake(self.admission, self.journal, lambda _target: None, remember=False)
            return
        if role == "front":
            self.workers = WorkerProcess(split_startup or {}, housekeeping=self._housekeeping)
            # The runner's metrics (actions, refusals, durations, jobs in progress, escalations).
            self.metrics.registry.register(ChildMetrics(self.workers, self.workers.runner_metrics, "runs the jobs"))
            if intake_startup is not None:
                self.intake = IntakeProcess(intake_startup, self.admission, self.journal.keys, self.workers.wake)
                # What the intake counts (unmatched alerts, the journal's commits and fsyncs).
                intake_metrics = ChildMetrics(self.intake, self.intake.intake_metrics, "admits the posts")
                self.metrics.registry.register(intake_metrics)
            else:
                self.intake = Intake(self.admission, self.journal, self.workers.wake)
            return
        extra = {"sleep": sleep} if sleep is not None else {}
        self.runner = JobRunner(
            config,
            self.journal,
            self.metrics,
            self.incidents,
            gpu=gpu,
            now=now,
            is_root=is_root,
            logs_config=logs_config,
            actuator_factory=actuator_factory,
            **extra,
        )
        self.workers = TargetWorkers(
            self.runner,
            self.journal,
            self.incidents,
            config.guards.max_job_attempts,
            # the worker process leaves the journal's housekeeping to the front, which holds the keys' memory
            housekeeping=self._housekeeping if role == "all" else None,
        )
        self.intake = Intake(self.admission, self.journal, self.workers.wake)

    def start(self) -> None:
        """Recover interrupted jobs and start the workers (the sweeper applies the retention); the
        front starts its worker process, then its intake process (RuntimeError when one cannot start)."""
        if self.workers is not None:
            self.workers.start()
        if isinstance(self.intake, IntakeProcess):
            try:
                self.intake.start()
            except RuntimeError:
                self.workers.stop()  # type: ignore[union-attr]
                raise

    def stop(self) -> list[str]:
        """Answer the queued posts, stop the workers, write the duplicates counted in memory and
        close the journal. The workers have `stop_grace_seconds` to end their running jobs; the
        threads still busy past it are returned, the journal left open: the caller then calls
        `abandon`, which exits."""
        self.intake.stop()
        grace = self.config.stop_grace_seconds
        if isinstance(self.workers, TargetWorkers):
            busy = self.workers.stop(grace)
            if busy:
                return busy
        elif self.workers is not None:  # the worker process waits for its jobs, then exits
            self.workers.stop(grace + WORKER_EXIT_SECONDS)
        self.journal.keys.flush_duplicates()
        self.journal.close()
        return []

    def abandon(self, why: str, code: int) -> NoReturn:
        """Leave the running jobs to the next receiver, kill the commands their actions run
        (TargetWorkers.abandon) and exit with `code` at once, the log written out: no abandoned
        job's thread goes on to its next step. After a `stop` that returned busy threads, or when
        the worker process's front is gone."""
        if isinstance(self.workers, TargetWorkers):
            self.workers.abandon(why)
        logging.shutdown()
        os._exit(code)

    def dead(self) -> list[str]:
        """What does not run and should (/healthz): a target's worker thread, the worker or intake process."""
        problems = [f"worker {name} is dead" for name in (self.workers.dead() if self.workers is not None else [])]
        if isinstance(self.intake, IntakeProcess):
            problems += [f"intake {name} is dead" for name in self.intake.dead()]
        return problems

    def _housekeeping(self) -> None:
        # The sweeper's idle work: duplicates answered from memory reach the journal within seconds.
        self.journal.keys.flush_duplicates()
        self.retention.maybe_run()


def check_secret_files(config: ReceiverConfig, pager: OnCallPager) -> None:
    """Every password file the config names is readable and the receiver's alone (ValueError otherwise),
    so a wrong mode stops the start instead of the first page or restart."""
    pager.check_credentials()
    for target in config.targets:
        if target.supervisord.password_file is not None and target.actuator == "supervisord":
            read_secret(target.supervisord.password_file, f"supervisord password of target {target.name}")


def receiver_links(config: ReceiverConfig, token: str | None) -> IncidentLinks:
    """The signed incident-page links this receiver prints and accepts (ValueError: unusable key file)."""
    page = config.incident_page
    host = config.listen_host
    base = page.public_url or f"http://{'[' + host + ']' if ':' in host else host}:{config.listen_port}"
    return IncidentLinks.for_receiver(token, base, page.link_ttl_seconds, page.link_key_file)
