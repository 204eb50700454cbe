"""Drain3 clustering of masked WARN/ERROR line bodies, with what we keep about each cluster.

Drain3 (`drain3.drain.Drain`) does the clustering: a fixed-depth tree on token count and
first tokens, then the most similar template above a threshold, else a new cluster; its
LRU cache caps the number of clusters. Next to each cluster we keep what a person needs
to judge it: counts, first and last seen, per-day counts (growth), levels and one example.
The state is saved as our own JSON (see `to_dict`), never with Drain3's jsonpickle.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from typing import Any

from drain3.drain import Drain, LogCluster

from tts_sentinel.loghistory.mining.lines import LEVEL_RANK
from tts_sentinel.loghistory.mining.masks import WILDCARD, mask, template_regex

KEEP_DAYS = 40  # per-day counts older than this are dropped (a weekly report needs two weeks at most)
EXAMPLE_CHARS = 500


def template_id(text: str) -> str:
    """A short stable id of a template text: the same template gets the same id online and offline."""
    return "t" + hashlib.blake2b(text.encode("utf-8"), digest_size=4).hexdigest()


def day_of(when: float) -> str:
    """The local calendar day of a Unix time, as YYYY-MM-DD."""
    return time.strftime("%Y-%m-%d", time.localtime(when))


@dataclass
class Template:
    """One cluster: its current template and what was seen of it."""

    cluster_id: int
    tokens: tuple[str, ...]
    count: int = 0
    first_seen: float | None = None
    last_seen: float | None = None
    levels: dict[str, int] = field(default_factory=dict)
    example: str = ""
    days: dict[str, int] = field(default_factory=dict)

    @property
    def text(self) -> str:
        return " ".join(self.tokens)

    @property
    def id(self) -> str:
        return template_id(self.text)

    def level(self) -> str:
        """The most severe level seen in the cluster."""
        return min(self.levels, key=lambda lv: LEVEL_RANK.get(lv, 5)) if self.levels else ""

    def regex(self) -> str:
        """A regular expression matching the template's lines."""
        return template_regex(self.tokens)

    def seen(self, level: str, line: str, when: float | None) -> None:
        self.count += 1
        self.levels[level] = self.levels.get(level, 0) + 1
        if not self.example:
            self.example = line[:EXAMPLE_CHARS]
        if when is None:
            return
        if self.first_seen is None or when < self.first_seen:
            self.first_seen = when
        if self.last_seen is None or when > self.last_seen:
            self.last_seen = when
        day = day_of(when)
        if day not in self.days:
            self.days[day] = 0
            if len(self.days) > KEEP_DAYS:
                for old in sorted(self.days)[: len(self.days) - KEEP_DAYS]:
                    del self.days[old]
        self.days[day] += 1

    def count_between(self, start: float, end: float) -> int:
        """Lines seen on the days overlapping [start, end] (whole days: that is what is kept)."""
        first, last = day_of(start), day_of(end)
        return sum(n for day, n in self.days.items() if first <= day <= last)

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.cluster_id, "tokens": list(self.tokens), "count": self.count,
                "first_seen": self.first_seen, "last_seen": self.last_seen, "levels": self.levels,
                "example": self.example, "days": self.days}


class TemplateMiner:
    """Drain3 over masked line bodies; `add` returns the template the line joined."""

    def __init__(self, similarity: float = 0.5, depth: int = 4, max_clusters: int = 1000) -> None:
        self.similarity = similarity
        self.depth = depth
        self.max_clusters = max_clusters
        self.drain = Drain(depth=depth, sim_th=similarity, max_clusters=max_clusters, param_str=WILDCARD)
        self.templates: dict[int, Template] = {}
        self.lines = 0

    def add(self, level: str, body: str, line: str, when: float | None = None) -> Template | None:
        """Put one line (its level, its body without timestamp and level, the raw line) in its template."""
        masked = mask(body)
        if not masked.split():
            return None
        self.lines += 1
        cluster, _ = self.drain.add_log_message(masked)
        t = self.templates.get(cluster.cluster_id)
        if t is None:
            t = self.templates[cluster.cluster_id] = Template(cluster.cluster_id, cluster.log_template_tokens)
            if len(self.templates) > self.max_clusters:
                self._forget_evicted()
        t.tokens = cluster.log_template_tokens
        t.seen(level, line, when)
        return t

    def _forget_evicted(self) -> None:
        # Drain3's LRU cache dropped a cluster to stay under the cap: drop what we kept about it.
        alive = self.drain.id_to_cluster
        for cid in [cid for cid in self.templates if cid not in alive]:
            del self.templates[cid]

    def all(self) -> list[Template]:
        """Every template, most frequent first."""
        return sorted(self.templates.values(), key=lambda t: (-t.count, t.cluster_id))

    def to_dict(self) -> dict[str, Any]:
        """The miner as plain JSON data: parameters and clusters; the tree is rebuilt from them."""
        return {"similarity": self.similarity, "depth": self.depth, "max_clusters": self.max_clusters,
                "next_id": self.drain.clusters_counter, "lines": self.lines,
                "clusters": [t.as_dict() for t in self.all()]}

    @classmethod
    def from_dict(cls, doc: dict[str, Any], similarity: float, depth: int, max_clusters: int) -> TemplateMiner:
        """A miner with the saved clusters and today's parameters (a changed config applies at once).

        Most recently seen clusters are kept when the cap is now lower, and inserted last so the
        LRU order goes on from where it was.
        """
        miner = cls(similarity, depth, max_clusters)
        clusters = sorted(doc.get("clusters", []), key=lambda c: (c.get("last_seen") or 0, c["id"]))
        for c in clusters[-max_clusters:]:
            t = Template(int(c["id"]), tuple(str(x) for x in c["tokens"]), int(c["count"]), c.get("first_seen"),
                         c.get("last_seen"), dict(c.get("levels", {})), str(c.get("example", "")),
                         dict(c.get("days", {})))
            cluster = LogCluster(list(t.tokens), t.cluster_id)
            cluster.size = t.count
            miner.drain.id_to_cluster[t.cluster_id] = cluster
            miner.drain.add_seq_to_prefix_tree(miner.drain.root_node, cluster)
            miner.templates[t.cluster_id] = t
        ids = [int(c["id"]) for c in clusters]
        miner.drain.clusters_counter = max([int(doc.get("next_id", 0)), *ids])
        miner.lines = int(doc.get("lines", 0))
        return miner
