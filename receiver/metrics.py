"""The receiver's own metrics, in its own registry."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from tts_sentinel.receiver.tiers import Tier


class ReceiverMetrics:
    """Counters that grow with events; created once, pre-created for every tier."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.actions = Counter(
            "tts_remediation_actions",
            "Remediation jobs finished, by tier and result.",
            ["tier", "result"],
            registry=self.registry,
        )
        self.refused = Counter(
            "tts_remediation_refused", "Remediations refused, by reason.", ["reason"], registry=self.registry
        )
        self.duration = Histogram(
            "tts_remediation_duration_seconds",
            "Wall time of a remediation job, verification included.",
            ["tier"],
            buckets=(0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600),
            registry=self.registry,
        )
        self.in_progress = Gauge("tts_remediation_in_progress", "Remediation jobs running now.", registry=self.registry)
        self.escalations = Counter(
            "tts_remediation_escalations", "Escalations to a higher tier.", registry=self.registry
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
            registry=self.registry,
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
