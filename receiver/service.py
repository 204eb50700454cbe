"""The receiver assembled: journal, incidents, admission, runner, workers, metrics. The HTTP app sits on top."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from tts_sentinel.loghistory.config import LogsConfig
from tts_sentinel.receiver.actuators import Actuator, build_actuator
from tts_sentinel.receiver.admission import Admission, AlertAdmission
from tts_sentinel.receiver.config import ReceiverConfig, TargetConfig
from tts_sentinel.receiver.gpu import NvmlGpu, running_as_root
from tts_sentinel.receiver.incidents import IncidentBook
from tts_sentinel.receiver.journal import Journal
from tts_sentinel.receiver.metrics import ReceiverMetrics
from tts_sentinel.receiver.pager import OnCallPager
from tts_sentinel.receiver.payload import WebhookPayload
from tts_sentinel.receiver.runner import JobRunner
from tts_sentinel.receiver.worker import TargetWorkers

PURGE_EVERY_SECONDS = 3600.0


class ReceiverService:
    """Everything behind the HTTP endpoints; `start()` recovers interrupted jobs and starts workers."""

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
    ) -> None:
        self.config = config
        self.token = token
        self.journal = Journal(journal_path or config.journal_path)
        self.metrics = ReceiverMetrics()
        self.pager = OnCallPager(config.alertmanager_url)
        self.incidents = IncidentBook(config, self.journal, self.pager)
        self.admission = AlertAdmission(config, self.journal, self.incidents, logs_config)
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
        self._last_purge = time.monotonic()
        self.workers = TargetWorkers(self.runner, self.journal, self.incidents, config.guards.max_job_attempts)

    def start(self) -> None:
        """Forget expired idempotency keys, recover interrupted jobs, start the workers."""
        self.journal.purge_keys(self.config.idempotency_retention_seconds)
        self._last_purge = time.monotonic()
        self.workers.start()

    def stop(self) -> None:
        """Stop the workers and close the journal."""
        self.workers.stop()
        self.journal.close()

    def accept(self, payload: WebhookPayload) -> Admission:
        """Persist the payload's jobs (raises sqlite3.Error if it cannot) and wake their workers."""
        if time.monotonic() - self._last_purge > PURGE_EVERY_SECONDS:
            self._last_purge = time.monotonic()
            self.journal.purge_keys(self.config.idempotency_retention_seconds)
        result = self.admission.admit(payload)
        for target in result.targets_to_wake:
            self.workers.wake(target)
        return result
