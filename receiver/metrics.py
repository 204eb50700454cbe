"""The receiver's own metrics, in its own registry."""

from __future__ import annotations

import time
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from tts_sentinel.receiver.journal import Journal
from tts_sentinel.receiver.tiers import Tier

# Alerts still firing in an incident this receiver healed: a log-pattern or probe alert keeps
# firing for its look-back window (2-10 min) after the fault is gone.
_HEALED_FIRING = (
    "SELECT DISTINCT i.target, a.alertname FROM incidents i"
    " JOIN incident_firing f ON f.incident_id = i.id"
    " JOIN jobs j ON j.incident_id = i.id"
    " JOIN job_alerts a ON a.job_id = j.id AND a.fingerprint = f.fingerprint"
    " WHERE i.closed_at IS NULL AND i.status = 'healed' AND i.healed_at >= ? AND a.alertname != ''"
    " ORDER BY i.target, a.alertname"
)


class ReceiverMetrics:
    """Counters that grow with events; created once, pre-created for every tier."""

    def __init__(self, registry: CollectorRegistry | None = None, runner_apart: bool = False,
                 intake_apart: bool = False) -> None:
        self.registry = registry or CollectorRegistry()
        # What the admissions count (unmatched alerts; the journal's commits and fsyncs, see
        # JournalSyncs): apart when they run in an intake process (receiver/intake_process.py).
        self.intake_registry = CollectorRegistry() if intake_apart else self.registry
        # The runner's metrics (actions, refusals, durations, in progress, escalations): in the
        # registry, or apart when the jobs run in a worker process (receiver/split.py), which
        # exposes its own and the front's /metrics reads them from it.
        self.runner_registry = CollectorRegistry() if runner_apart else self.registry
        runner = self.runner_registry
        self.actions = Counter(
            "tts_remediation_actions",
            "Remediation jobs finished, by tier and result.",
            ["tier", "result"],
            registry=runner,
        )
        self.refused = Counter(
            "tts_remediation_refused", "Remediations refused, by reason.", ["reason"], registry=runner
        )
        self.duration = Histogram(
            "tts_remediation_duration_seconds",
            "Wall time of a remediation job, verification included.",
            ["tier"],
            buckets=(0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600),
            registry=runner,
        )
        self.in_progress = Gauge("tts_remediation_in_progress", "Remediation jobs running now.", registry=runner)
        self.escalations = Counter(
            "tts_remediation_escalations", "Escalations to a higher tier.", registry=runner
        )
        self.webhook_requests = Counter(
            "tts_webhook_requests",
            "Webhook requests answered, by HTTP code.",
            ["code"],
            registry=self.registry,
        )
        self.unmatched_alerts = Counter(
            "tts_receiver_unmatched_alerts",
            "Firing alerts that matched no target (not acted on), by alertname; past 100 names: alertname=other.",
            ["alertname"],
            registry=self.intake_registry,
        )
        self.insecure = Gauge(
            "tts_receiver_insecure",
            "1 when the receiver accepts requests without a bearer token (--insecure).",
            registry=self.registry,
        )
        for tier in Tier:
            for result in ("success", "failure", "refused", "dry_run"):
                self.actions.labels(tier=tier, result=result)
            self.duration.labels(tier=tier)
        for code in ("202", "401", "413", "422", "429"):
            self.webhook_requests.labels(code=code)


class HealedAlertsFiring(Collector):
    """`tts_receiver_healed_alert_firing{target, alertname}` = 1 for each alert that still fires in an
    open incident this receiver healed less than `incidents.lookback_seconds` ago (read from the journal
    at each scrape).

    The paging backstop (TtsNotHealed) leaves these out: a healed fault's alert that lingers for its
    look-back window is not a fault nobody heals. An alert the receiver never received, or holds in an
    incident it has not healed, is never listed; with the receiver down the series vanish, and the
    backstop counts every alert again."""

    def __init__(self, journal: Journal, lookback_seconds: float) -> None:
        self.journal = journal
        self.lookback = lookback_seconds  # past this, a healed alert still firing is a fault again

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "tts_receiver_healed_alert_firing",
            "1 for each alert still firing in an open incident the receiver healed, by target and alertname.",
            labels=["target", "alertname"],
        )
        for target, alertname in self.journal.execute(_HEALED_FIRING, (time.time() - self.lookback,)).fetchall():
            family.add_metric([target, alertname], 1.0)
        yield family


class JournalSyncs(Collector):
    """`tts_receiver_journal_commits_total` and `tts_receiver_journal_fsyncs_total`: the journal's
    commits and the fsyncs that made them durable (commits per fsync: how well writes share one)."""

    def __init__(self, journal: Journal) -> None:
        self.sync = journal.durability

    def collect(self) -> Iterator[CounterMetricFamily]:
        yield CounterMetricFamily("tts_receiver_journal_commits", "Journal transactions committed.",
                                  value=self.sync.commits)
        yield CounterMetricFamily("tts_receiver_journal_fsyncs", "fsyncs of the journal's write-ahead log.",
                                  value=self.sync.fsyncs)
