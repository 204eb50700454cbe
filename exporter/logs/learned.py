"""Online template learning: WARN/ERROR lines no pattern covers are mined as they are read.

Called with every block a log's counter scans. A block without a level word costs a few
`bytes.find` (one Hyperscan pass when installed); otherwise each warning or error line is, in order: left alone when a
configured pattern matches it (known), counted when a learned template matches it
(promoted: `tts_log_template_matches_total{log,template}`; accepted:
`tts_log_pattern_matches_total{log,pattern=NAME}`; rejected: nothing), else mined with
Drain3. A template seen often enough (`LearningConfig`) is promoted: written to the
learned-patterns file, counted from then on, and announced once by the TtsNewLogTemplate
info alert through `tts_log_template_promoted_timestamp_seconds`. The file is reloaded when
`tts-sentinel mine accept|reject` changes it; the clusters are saved to the state file.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Gauge

from tts_sentinel.loghistory.config import LogsConfig
from tts_sentinel.loghistory.mining.learned import (
    LearnedFileError,
    LearnedPatterns,
    LearnedTemplate,
    editing_learned,
    load_learned,
)
from tts_sentinel.loghistory.mining.lines import (
    MINED_LEVELS,
    LevelPrefilter,
    LineShape,
    covering_pattern,
    warn_error_lines,
)
from tts_sentinel.loghistory.mining.miner import Template, TemplateMiner
from tts_sentinel.loghistory.mining.state import load_miners, save_miners
from tts_sentinel.loghistory.scanner import CompiledPattern, compile_pattern

log = logging.getLogger(__name__)

TEXT_LABEL_CHARS = 200  # the template text rides on a label of the announcement; keep it short
RATE_BUCKETS = 10


class LearningMetrics:
    """The `tts_log_template*` series, registered once."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.matches = Counter(
            "tts_log_template_matches", "Log lines matching a promoted (learned, not yet named) template.",
            ["log", "template"], registry=registry,
        )
        self.promoted = Gauge(
            "tts_log_template_promoted_timestamp_seconds",
            "When a learned template was promoted; present while it waits for `tts-sentinel mine accept|reject`.",
            ["log", "template", "text"], registry=registry,
        )
        self.active = Gauge("tts_log_templates_active", "Learned templates counted now (promoted and accepted).",
                            registry=registry)
        self.over_cap = Counter(
            "tts_log_templates_over_cap", "New templates not promoted because max_active_templates was reached.",
            registry=registry,
        )
        self.mined = Counter("tts_log_mined_lines", "WARN/ERROR lines no pattern or learned template matched.",
                             ["log"], registry=registry)


class TemplateLearner:
    """Mines every log's WARN/ERROR lines online and promotes new frequent templates."""

    def __init__(self, config: LogsConfig, pattern_matches: Counter, registry: CollectorRegistry,
                 state_dir: Path, clock: Callable[[], float] = time.time) -> None:
        self.config = config.learning
        self.clock = clock
        self.shape = LineShape(config.triage.timestamp_regex)
        self.has_levels = LevelPrefilter(config.scanner)
        self.logs = config.log_names()
        compiled = {p.name: compile_pattern(p.name, p.regex) for p in config.all_patterns()}
        self.known = {name: [compiled[p.name] for p in config.patterns_for(name)] for name in self.logs}
        self.configured_names = set(compiled)
        self.learned_path = self.config.learned_path(state_dir)
        self.state_path = self.config.state_path(state_dir)
        self.metrics = LearningMetrics(registry)
        self._pattern_matches = pattern_matches
        c = self.config
        saved = load_miners(self.state_path, c.similarity, c.depth, c.max_clusters)
        self.miners = {name: saved.get(name) or TemplateMiner(c.similarity, c.depth, c.max_clusters)
                       for name in self.logs}
        for name in self.logs:
            self.metrics.mined.labels(log=name)
        self._lock = threading.RLock()
        self._rates: dict[tuple[str, int], deque[list[int]]] = {}
        self._settled: set[tuple[str, int]] = set()  # clusters promoted (or refused for good) in this run
        self._over_cap: set[tuple[str, int]] = set()
        self.learned = LearnedPatterns()
        self._matchers: dict[str, list[tuple[LearnedTemplate, CompiledPattern, object]]] = {}
        self._series: set[tuple[str, ...]] = set()
        self._signature: tuple[int, int, int] | None = None
        self._dirty = False
        self._last_save = clock()
        self.maintain()

    # -- the hook: one block of one log ------------------------------------------------------

    def feed(self, log_name: str, block: bytes | bytearray) -> None:
        """Mine the WARN/ERROR lines of one block of complete lines of `log_name`."""
        if not self.has_levels(block):
            return  # the fast path: most blocks hold no warning at all
        lines = warn_error_lines(block)
        with self._lock:
            now = self.clock()
            for raw in lines:
                self._line(log_name, raw, now)

    def _line(self, log_name: str, raw: bytes, now: float) -> None:
        line = raw.decode("utf-8", "replace").rstrip("\r")
        level, body = self.shape.split(line)
        if level not in MINED_LEVELS or covering_pattern(raw, self.known[log_name]) is not None:
            return
        for _entry, pattern, child in self._matchers.get(log_name, ()):
            if (pattern.literal is None or pattern.literal in raw) and pattern.regex.search(raw):
                if child is not None:
                    child.inc()  # type: ignore[attr-defined]
                return
        t = self.miners[log_name].add(level, body, line, now)
        if t is None:
            return
        self._dirty = True
        self.metrics.mined.labels(log=log_name).inc()
        key = (log_name, t.cluster_id)
        if key in self._settled:
            return
        if self._rate(key, now) >= self.config.promote_threshold() and \
                now - (t.first_seen or now) >= self.config.min_age_seconds:
            self._promote(log_name, t, now)

    def _rate(self, key: tuple[str, int], now: float) -> int:
        """Lines of the cluster within the rate window, this one included (buckets of a tenth of it)."""
        width = self.config.rate_window_seconds / RATE_BUCKETS
        bucket = int(now // width)
        if key not in self._rates and len(self._rates) >= self.config.max_clusters * len(self.logs):
            # Clusters Drain3 evicted, or quiet for a whole window, need no rate any more.
            self._rates = {k: q for k, q in self._rates.items() if q[-1][0] > bucket - RATE_BUCKETS}
        q = self._rates.setdefault(key, deque())
        if q and q[-1][0] == bucket:
            q[-1][1] += 1
        else:
            q.append([bucket, 1])
        while q and q[0][0] <= bucket - RATE_BUCKETS:
            q.popleft()
        return sum(n for _, n in q)

    # -- promotion ---------------------------------------------------------------------------

    def _promote(self, log_name: str, t: Template, now: float) -> None:
        key = (log_name, t.cluster_id)
        existing = self.learned.get(t.id)
        if existing is not None and (existing.status == "rejected" or log_name in existing.logs):
            self._settled.add(key)  # a rejected template never comes back
            return
        if existing is None and len(self.learned.active()) >= self.config.max_active_templates:
            if key not in self._over_cap:
                self._over_cap.add(key)
                self.metrics.over_cap.inc()
                log.warning("template %s of log %s is not promoted: %d learned templates are active "
                            "(max_active_templates); accept or reject some with `tts-sentinel mine`.",
                            t.id, log_name, self.config.max_active_templates)
            return
        entry = LearnedTemplate(
            id=t.id, template=t.text, regex=t.regex(), logs=[log_name], level=t.level(), example=t.example,
            first_seen=t.first_seen, promoted_at=now, lines_before_promotion=t.count,
        )
        try:
            with editing_learned(self.learned_path) as learned:
                current = learned.get(t.id)
                if current is None:
                    learned.templates.append(entry)
                elif current.status != "rejected" and log_name not in current.logs:
                    current.logs.append(log_name)
                snapshot = learned.model_copy(deep=True)
        except LearnedFileError as exc:
            self._settled.add(key)
            log.warning("cannot promote template %s: %s", t.id, exc)
            return
        self._settled.add(key)
        self._rates.pop(key, None)
        self._over_cap.discard(key)
        log.info("promoted log template %s of log %s: %s", t.id, log_name, t.text)
        self._apply(snapshot)
        self._signature = self._stat()

    # -- the learned file --------------------------------------------------------------------

    def _stat(self) -> tuple[int, int, int] | None:
        try:
            st = os.stat(self.learned_path)
        except OSError:
            return None
        return (st.st_ino, st.st_mtime_ns, st.st_size)

    def maintain(self) -> None:
        """Reload the learned file when it changed; save the clusters when due. Called every poll."""
        signature = self._stat()
        if signature != self._signature:
            self._signature = signature
            try:
                learned = load_learned(self.learned_path)
            except LearnedFileError as exc:
                log.warning("%s", exc)
            else:
                with self._lock:
                    self._apply(learned)
        if self._dirty and self.clock() - self._last_save >= self.config.save_interval_seconds:
            self.save_state()

    def _apply(self, learned: LearnedPatterns) -> None:
        """Count and skip by what the file says now; drop the series of templates no longer promoted."""
        matchers: dict[str, list[tuple[LearnedTemplate, CompiledPattern, object]]] = {n: [] for n in self.logs}
        series: set[tuple[str, ...]] = set()
        for entry in learned.templates:
            if entry.status == "accepted" and entry.name in self.configured_names:
                continue  # pasted into the config: the configured pattern counts it
            try:
                pattern = entry.pattern()
            except re.error as exc:
                log.warning("learned template %s has a bad regex (%s); ignored.", entry.id, exc)
                continue
            for name in (n for n in entry.logs if n in matchers):
                child = None
                if entry.status == "promoted":
                    text = entry.template[:TEXT_LABEL_CHARS]
                    child = self.metrics.matches.labels(log=name, template=entry.id)
                    self.metrics.promoted.labels(log=name, template=entry.id, text=text).set(entry.promoted_at)
                    series |= {("matches", name, entry.id), ("promoted", name, entry.id, text)}
                elif entry.status == "accepted" and entry.name:
                    child = self._pattern_matches.labels(log=name, pattern=entry.name)
                    series.add(("pattern", name, entry.name))
                matchers[name].append((entry, pattern, child))
        for gone in self._series - series:
            metric = {"matches": self.metrics.matches, "promoted": self.metrics.promoted,
                      "pattern": self._pattern_matches}[gone[0]]
            metric.remove(*gone[1:])
        self._series = series
        self._matchers = matchers
        self.learned = learned
        self.metrics.active.set(len(learned.active()))

    # -- the clusters ------------------------------------------------------------------------

    def close(self) -> None:
        """Save the clusters if anything was mined since the last save (the pipeline stops)."""
        if self._dirty:
            self.save_state()

    def save_state(self) -> None:
        """Save every log's clusters now (atomic, 0600); a failure is logged, mining goes on."""
        with self._lock:
            miners = {name: m.to_dict() for name, m in self.miners.items()}
            self._dirty = False
            self._last_save = self.clock()
        try:
            save_miners(self.state_path, miners)
        except OSError as exc:
            log.warning("cannot save the template miner to %s (%s); check state_dir.", self.state_path, exc)
