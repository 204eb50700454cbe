"""Journal rows and soak runs as the scoring sees them, built by hand for the harness tests."""

from __future__ import annotations

from pathlib import Path

from tts_sentinel.harness.drill import StackEndpoints
from tts_sentinel.harness.incidents import group_incidents
from tts_sentinel.harness.soak.observe import Observer, Page
from tts_sentinel.harness.soak.run import SENTINEL, InjectionRecord, RunRecord

WEB = [{"step": "restart web via supervisord (hot_reload=False)"}]
ENGINE = [{"step": "stop inference via supervisord"}, {"step": "start inference via supervisord"}]
BOTH = [{"step": "stop web via supervisord"}, {"step": "stop inference via supervisord"}]
ENDPOINTS = StackEndpoints(*(["http://127.0.0.1:9"] * 6), token="t")


def job(id, tier, status, created, steps=(), **extra):
    return {"id": id, "tier": tier, "status": status, "created_at": created, "finished_at": created + 4,
            "kind": "remediate", "target": "qwen3-tts", "steps": list(steps), **extra}


def run_of(plan, rows, greens, pages=(), cleared=(), listed=None):
    """A sentinel run: injections at t=100, 200, ...; green `greens[i]` s after each (None: never);
    `listed` is what GET /incidents answers (None: a receiver without incidents)."""
    observer = Observer(ENDPOINTS, Path("/nonexistent"))
    observer.pages = [Page(arrived=t + 1, alertname=name, starts_at=t, labels={}) for t, name in pages]
    record = RunRecord(SENTINEL, started_at=90.0, observer=observer, finished_at=100.0 + 100 * len(plan))
    for i, injection in enumerate(plan):
        at = 100.0 + 100 * i
        green = None if greens[i] is None else at + greens[i]
        record.records.append(InjectionRecord(i, injection, injected_at=at, green_at=green, ended_at=at + 50,
                                              cleared_by_soak=i in cleared))
    record.incidents = group_incidents(rows, listed, [r.injected_at for r in record.records])
    return record
