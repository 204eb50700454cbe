"""`tts-sentinel mine`: find log templates no configured pattern covers (seed §5.1).

The seed runs logmine over inference.log each week to discover new anomaly patterns
(its example: a `[WARN] Tokenizer skipped 3 special chars` that appeared after an
update). This is a small Drain-style miner: each line loses its timestamp, variable
parts (numbers, hex ids, paths, quoted strings) are masked, and lines are grouped by
token count and first token, then merged into the most similar template when at
least `--similarity` of their tokens agree. Templates whose lines match no configured
pattern are printed by count, with a ready-to-paste `extra_patterns` entry.
"""

from __future__ import annotations

import gzip
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from tts_sentinel.loghistory.scanner import CompiledPattern

WILDCARD = "<*>"
# Masked before tokenising, most specific first: these vary from line to line of one template.
MASKS = [
    (re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b", re.I), WILDCARD),
    (re.compile(r"\b\d{1,3}(?:\.\d{1,3}){3}(?::\d+)?\b"), WILDCARD),
    (re.compile(r"(?:/[\w.\-]+){2,}"), WILDCARD),
    (re.compile(r"'[^']*'|\"[^\"]*\""), WILDCARD),
    (re.compile(r"\b0x[0-9a-f]+\b|\b[0-9a-f]*\d[0-9a-f]*[a-f][0-9a-f]*\b|\b[0-9a-f]*[a-f][0-9a-f]*\d[0-9a-f]*\b", re.I),
     WILDCARD),
    (re.compile(r"[-+]?\d+(?:[.,:]\d+)*(?:[a-zA-Z%]{0,3})\b"), WILDCARD),
]
LEVEL = re.compile(r"^\s*\[?(CRITICAL|FATAL|ERROR|WARN(?:ING)?|INFO|DEBUG)\]?:?\s+")
WORD = re.compile(r"[A-Za-z][A-Za-z_]*[:,]?")
LEVEL_RANK = {"CRITICAL": 0, "FATAL": 0, "ERROR": 1, "WARNING": 2, "WARN": 2, "INFO": 3, "DEBUG": 4, "": 5}


def mask(text: str) -> str:
    """The line with its variable parts replaced by <*>."""
    for rx, repl in MASKS:
        text = rx.sub(repl, text)
    return text


@lru_cache(maxsize=65536)
def _token_regex(token: str) -> re.Pattern[str]:
    return re.compile(".*".join(re.escape(p) for p in token.split(WILDCARD)))


def _token_matches(template_token: str, token: str) -> bool:
    if template_token == token:
        return True
    return WILDCARD in template_token and _token_regex(template_token).fullmatch(token) is not None


def _merge_token(a: str, b: str) -> str:
    """`req=<*>` and `req=ecbaddbe` -> `req=<*>`: keep what both share at either end."""
    if _token_matches(a, b):
        return a
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n] and a[n] not in "<*>":
        n += 1
    m = 0
    while m < min(len(a), len(b)) - n and a[-1 - m] == b[-1 - m] and a[-1 - m] not in "<*>":
        m += 1
    return a[:n] + WILDCARD + (a[len(a) - m:] if m else "")


@dataclass
class Template:
    """A cluster of lines: their common tokens, <*> where they differ."""

    tokens: list[str]
    count: int = 0
    example: str = ""
    levels: dict[str, int] = field(default_factory=dict)

    def similarity(self, tokens: list[str]) -> float:
        """Share of the template's constant tokens the line repeats (Drain's simSeq)."""
        constant = [(a, b) for a, b in zip(self.tokens, tokens, strict=True) if a != WILDCARD]
        if not constant:
            return 1.0
        return sum(1 for a, b in constant if _token_matches(a, b)) / len(constant)

    def absorb(self, tokens: list[str], line: str, level: str) -> None:
        self.tokens = [_merge_token(a, b) for a, b in zip(self.tokens, tokens, strict=True)]
        self.count += 1
        self.levels[level] = self.levels.get(level, 0) + 1
        if not self.example:
            self.example = line

    @property
    def text(self) -> str:
        return " ".join(self.tokens)

    def level(self) -> str:
        """The most severe level seen in the cluster."""
        return min(self.levels, key=lambda lv: LEVEL_RANK.get(lv, 5)) if self.levels else ""

    def regex(self) -> str:
        """A regular expression matching the template's lines (wildcards as non-space runs)."""
        tokens = list(self.tokens)
        # Variable context at either end (`[worker-3] req=<*>`) only makes the regex brittle.
        while len(tokens) > 1 and WILDCARD in tokens[0]:
            tokens.pop(0)
        while len(tokens) > 1 and WILDCARD in tokens[-1]:
            tokens.pop()
        parts = [r"\S*".join(re.escape(piece) for piece in t.split(WILDCARD)) for t in tokens]
        return r"\s+".join(r"\S+" if p == r"\S*" else p for p in parts)


class TemplateMiner:
    """Drain-like clustering: length -> first token -> templates, merged above a similarity."""

    def __init__(self, similarity: float = 0.6, timestamp_regex: str = r"^\S+ \S+ ", max_clusters: int = 5000):
        self.similarity = similarity
        self.ts = re.compile(timestamp_regex)
        self.max_clusters = max_clusters
        self.groups: dict[tuple[int, str], list[Template]] = {}
        self.clusters = 0
        self.lines = 0

    def add(self, line: str) -> None:
        """Put one line (without newline) in its template."""
        self.lines += 1
        body = self.ts.sub("", line, count=1)
        m = LEVEL.match(body)
        level = m.group(1) if m else ""
        if m:  # the level is reported per template, not part of it: INFO and WARNING lines merge
            body = body[m.end():]
        tokens = mask(body).split()
        if not tokens:
            return
        # Drain's tree: token count, then the first token that is a plain word (not context in brackets).
        first = next((t for t in tokens if WORD.fullmatch(t)), WILDCARD)
        key = (len(tokens), first)
        group = self.groups.setdefault(key, [])
        best, best_sim = None, 0.0
        for t in group:
            sim = t.similarity(tokens)
            if sim > best_sim:
                best, best_sim = t, sim
        if best is None or best_sim < self.similarity:
            if self.clusters >= self.max_clusters and group:
                best = max(group, key=lambda t: t.similarity(tokens))  # bounded memory: merge anyway
            else:
                best = Template(list(tokens))
                group.append(best)
                self.clusters += 1
        best.absorb(tokens, line, level)

    def templates(self) -> list[Template]:
        """All templates, most frequent first."""
        out = [t for group in self.groups.values() for t in group]
        out.sort(key=lambda t: -t.count)
        return out


def read_lines(path: Path, max_bytes: int) -> Iterator[str]:
    """The last `max_bytes` of a log (or all of a .gz archive) as text lines; bad bytes replaced."""
    if path.name.endswith(".gz"):
        with gzip.open(path, "rb") as f:
            for raw in f:
                yield raw.rstrip(b"\r\n").decode("utf-8", "replace")
        return
    with open(path, "rb") as f:
        size = f.seek(0, 2)
        start = max(0, size - max_bytes)
        f.seek(start)
        if start:
            f.readline()  # drop the partial first line
        for raw in f:
            yield raw.rstrip(b"\r\n").decode("utf-8", "replace")


def mine(
    lines: Iterable[str], patterns: list[CompiledPattern], similarity: float = 0.6,
    timestamp_regex: str = r"^\S+ \S+ ",
) -> tuple[list[Template], int, int]:
    """Cluster the lines no pattern matches; returns (templates by count, lines seen, lines already covered)."""
    miner = TemplateMiner(similarity, timestamp_regex)
    covered = 0
    for line in lines:
        raw = line.encode("utf-8", "replace")
        if any((p.literal is None or p.literal in raw) and p.regex.search(raw) for p in patterns):
            covered += 1
            continue
        miner.add(line)
    return miner.templates(), miner.lines + covered, covered


def suggest_name(t: Template) -> str:
    plain = " ".join(x for x in t.tokens if WILDCARD not in x and not x.startswith("["))
    words = [w.lower() for w in re.findall(r"[A-Za-z]{3,}", plain)]
    words = [w for w in words if w not in {"info", "warn", "warning", "error", "debug", "critical"}]
    return "_".join(words[:4]) or "template"
