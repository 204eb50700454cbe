"""Candidate validation: the whole probe battery against a new deployment and the current one.

The exporter's own probers run unchanged; only their URLs are pointed at the candidate's origin
(scheme, host, port). Each L2 language/speaker cell is its own check. L3 and quality compare
with the templates and reference recordings of the current model (`probes.model_id`), so a
candidate that sounds unlike the version it replaces fails them. The current version runs the
same checks on the same texts, for the figures side by side.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

from tts_sentinel.exporter.probes.config import ProbesConfig, SynthesisProbeConfig
from tts_sentinel.exporter.probes.prober import ProbeResult
from tts_sentinel.exporter.probes.registry import prober_for


class ValidationError(ValueError):
    """The validation cannot run (bad candidate URL, nothing enabled); the message says what to fix."""


@dataclass
class CheckOutcome:
    """One check run against both versions: verdicts, reasons and the figures it measured."""

    check: str
    prober: str
    candidate: ProbeResult
    current: ProbeResult | None
    seconds: float

    @property
    def passed(self) -> bool:
        """The candidate must pass every check on its own; the current version is only compared."""
        return self.candidate.success

    def figures(self) -> list[dict[str, Any]]:
        """Each gauge the candidate reported, with the current version's value of the same series."""
        current = {_key(m.name, m.labels): m.value for m in (self.current.gauges if self.current else [])}
        return [
            {"name": m.name, "labels": m.labels, "candidate": round(m.value, 4),
             "current": None if _key(m.name, m.labels) not in current else round(current[_key(m.name, m.labels)], 4)}
            for m in self.candidate.gauges
        ]

    def to_dict(self) -> dict[str, Any]:
        """The check as the `--json` output shows it."""
        return {
            "check": self.check, "prober": self.prober, "passed": self.passed,
            "candidate": _verdict(self.candidate),
            "current": None if self.current is None else _verdict(self.current),
            "seconds": round(self.seconds, 3), "figures": self.figures(),
        }


@dataclass
class ValidationReport:
    """Every check, the identities of both versions, and the verdict."""

    candidate_url: str
    candidate_model: dict[str, str | None]
    current_model: dict[str, str | None]
    checks: list[CheckOutcome] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        """True when the candidate passed every check."""
        return bool(self.checks) and all(c.passed for c in self.checks)

    def failed_checks(self) -> list[str]:
        """Names of the checks the candidate failed."""
        return [c.check for c in self.checks if not c.passed]

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON."""
        return {
            "candidate_url": self.candidate_url, "passed": self.passed, "failed_checks": self.failed_checks(),
            "candidate_model": self.candidate_model, "current_model": self.current_model,
            "checks": [c.to_dict() for c in self.checks],
        }

    def lines(self) -> list[str]:
        """The report for people: one line per check with its figures, then the verdict."""
        out = [f"candidate {self.candidate_url}: model {_identity(self.candidate_model)}",
               f"current: model {_identity(self.current_model)}", "figures: current -> candidate"]
        for c in self.checks:
            state = "PASS" if c.passed else "FAIL [" + ",".join(c.candidate.reasons) + "]"
            now = "" if c.current is None else ("  current: ok" if c.current.success
                                                 else "  current: FAIL [" + ",".join(c.current.reasons) + "]")
            out.append(f"{state} {c.check} ({c.seconds:.2f}s){now}")
            for f in c.figures():
                cell = "/".join(f["labels"].values())
                before = "-" if f["current"] is None else f"{f['current']:g}"
                out.append(f"    {f['name']}{'{' + cell + '}' if cell else ''}: {before} -> {f['candidate']:g}")
        verdict = "passed" if self.passed else "FAILED: " + ", ".join(self.failed_checks())
        out.append(f"validation {verdict}")
        return out


def validate_candidate(probes: ProbesConfig, candidate_url: str, *, compare: bool = True) -> ValidationReport:
    """Run every enabled module (each L2 cell apart) against the candidate and, with `compare`,
    the current version; raises ValidationError when nothing can run."""
    origin = candidate_origin(candidate_url)
    checks = battery(probes)
    if not checks:
        raise ValidationError("no probe module is enabled in exporter.probes; enable health, synthesis and the rest")
    headers = probes.synthesis.request.request_headers() if probes.synthesis.enabled else {}
    report = ValidationReport(
        candidate_url=origin,
        candidate_model=served_model(origin, headers),
        current_model=served_model(_origin_of(probes), headers) if compare else {},
    )
    for name, cfg in checks:
        prober = prober_for(cfg.prober)
        started = time.monotonic()
        candidate = prober.run(retarget(cfg, origin), probes)
        current = prober.run(cfg, probes) if compare else None
        report.checks.append(CheckOutcome(name, cfg.prober, candidate, current, time.monotonic() - started))
    return report


def battery(probes: ProbesConfig) -> list[tuple[str, Any]]:
    """(check name, module config) for every enabled module; synthesis split into one check per cell."""
    out: list[tuple[str, Any]] = []
    for name, cfg in probes.enabled_modules().items():
        if isinstance(cfg, SynthesisProbeConfig):
            for cell in cfg.targets:
                out.append((f"{name}[{cell.lang}/{cell.speaker}]", cfg.model_copy(update={"targets": [cell]})))
        else:
            out.append((name, cfg))
    return out


def candidate_origin(url: str) -> str:
    """`scheme://host:port` of the candidate; ValidationError for anything else."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValidationError(f"candidate {url!r} is not an http(s) URL; give its base, e.g. http://127.0.0.1:8001")
    if parts.username or parts.password:
        raise ValidationError("the candidate URL carries credentials; configure a bearer token in exporter.probes")
    return urlunsplit((parts.scheme, parts.netloc, "", "", ""))


def retarget(cfg: Any, origin: str) -> Any:
    """A copy of a module config whose URLs (health url, request url, websocket url) use `origin`."""
    update: dict[str, Any] = {}
    if hasattr(cfg, "url"):
        update["url"] = _with_origin(cfg.url, origin)
    if hasattr(cfg, "request"):
        update["request"] = cfg.request.model_copy(update={"url": _with_origin(cfg.request.url, origin)})
    if getattr(cfg, "websocket_url", None):
        ws = urlsplit(origin)._replace(scheme="wss" if origin.startswith("https") else "ws").geturl()
        update["websocket_url"] = _with_origin(cfg.websocket_url, ws)
    return cfg.model_copy(update=update)


def served_model(origin: str, headers: dict[str, str]) -> dict[str, str | None]:
    """Model id and weights sha256 from GET /v1/models (vLLM-Omni); unknown when not served."""
    try:
        resp = httpx.get(origin + "/v1/models", headers=headers, timeout=5.0)
        data = (resp.json().get("data") or []) if resp.status_code == 200 else []
    except (httpx.HTTPError, ValueError, AttributeError):
        data = []
    first = data[0] if data and isinstance(data[0], dict) else {}
    sha = first.get("weights_sha256")
    return {"model_id": first.get("id") if isinstance(first.get("id"), str) else None,
            "weights_sha256": sha if isinstance(sha, str) else None}


def _origin_of(probes: ProbesConfig) -> str:
    url = probes.synthesis.request.url if probes.synthesis.enabled else probes.health.url
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "", "", ""))


def _with_origin(url: str, origin: str) -> str:
    parts, new = urlsplit(url), urlsplit(origin)
    return urlunsplit((new.scheme, new.netloc, parts.path, parts.query, parts.fragment))


def _key(name: str, labels: dict[str, str]) -> tuple[str, tuple[tuple[str, str], ...]]:
    return name, tuple(sorted(labels.items()))


def _verdict(result: ProbeResult) -> dict[str, Any]:
    return {"success": result.success, "reasons": result.reasons, "detail": result.detail}


def _identity(model: dict[str, str | None]) -> str:
    if not model:
        return "not asked"
    sha = model.get("weights_sha256")
    return f"{model.get('model_id') or 'unknown'} (weights sha256 {sha[:12] + '...' if sha else 'unknown'})"
