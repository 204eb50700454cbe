"""Audio evidence of failed probes, kept on disk within bounds (the `exporter.evidence` section).

When a synthesis, semantic or quality probe fails, its prober builds an Exhibit
(exporter/evidence_exhibit.py) and calls `keep_evidence(probes_config, exhibit)`. The store
attached to that exporter writes one folder per failed cell:

    <dir>/<id>/evidence.json   probe, cell, reasons, checks with values and thresholds, file list
    <dir>/<id>/clip.wav        the failing clip (cut to max_clip_seconds), when the service gave audio
    <dir>/<id>/baseline.wav    the baseline clip of the same cell, when one was recorded
    <dir>/<id>/waveform.svg    waveform and energy, baseline energy dashed over it
    <dir>/<id>/f0.svg          F0 contour over the template's (semantic probe)

An item is written under a dot-name and renamed into place, so readers never see half of one.
Bounds: at most max_items items, max_bytes bytes and max_age_seconds of age (the oldest go
first), and one item per probe/cell/reasons per min_interval_seconds (a fault that lasts a day
keeps its first clip, not only its last). Evidence is a by-product: a full disk or an
unwritable dir means "no clip kept" (one log line, tts_evidence_dropped_total), never a failed probe.

Hook point for a new prober (e.g. exporter/probes/streaming.py): where it decides a failure,
`keep_evidence(probes, Exhibit(probe="streaming", cell={...}, reasons=[...], detail=..., checks=[...],
clip=audio))`. Nothing else is needed: the store, the routes and the incident page take it from there.
"""

from __future__ import annotations

import json
import logging
import os
import re
import secrets
import shutil
import stat
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from pydantic import BaseModel, ConfigDict, Field

from tts_sentinel.exporter.audio.wav import Audio, encode_wav
from tts_sentinel.exporter.evidence_exhibit import Exhibit
from tts_sentinel.exporter.evidence_plots import f0_svg, waveform_svg
from tts_sentinel.exporter.probes.config import ProbesConfig

log = logging.getLogger(__name__)
ITEM_ID = re.compile(r"^[0-9]{8}T[0-9]{6}Z-[0-9a-f]{8}$")
MANIFEST = "evidence.json"
# name -> content type: the only files an item can have, and the only ones served.
FILE_TYPES = {"clip.wav": "audio/wav", "baseline.wav": "audio/wav", "waveform.svg": "image/svg+xml",
              "f0.svg": "image/svg+xml", MANIFEST: "application/json"}
# Reasons that say nothing about the audio: a missing template is TtsProbeBaselineMissing's job.
NOT_EVIDENCE = frozenset({"no_baseline"})
DROP_REASONS = ("unwritable", "too_large", "repeat")
EVICT_CAPS = ("count", "size", "age")


class EvidenceConfig(BaseModel):
    """The `exporter.evidence` section: where failed probes' clips go, and how much of them is kept."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    # Default: <exporter.state_dir>/evidence (0700, files 0600).
    dir: Path | None = None
    max_items: int = Field(default=100, ge=1)
    max_bytes: int = Field(default=100 * 1024 * 1024, ge=64 * 1024)
    max_age_seconds: float = Field(default=7 * 86400.0, gt=0)
    # A runaway clip can run for minutes; the first 30 s show the fault as well.
    max_clip_seconds: float = Field(default=30.0, gt=0)
    # One item per (probe, cell, reasons) in this many seconds; repeats are counted, not stored.
    min_interval_seconds: float = Field(default=300.0, ge=0)


class EvidenceStore(Collector):
    """Writes, bounds, lists and reads evidence items; exposes tts_evidence_* at scrape time."""

    def __init__(self, config: EvidenceConfig, state_dir: Path) -> None:
        self.config = config
        self.dir = Path(config.dir) if config.dir is not None else Path(state_dir) / "evidence"
        self._lock = threading.Lock()
        self._index: dict[str, dict[str, Any]] = {}  # id -> manifest (+ "bytes")
        self._last_kept: dict[str, float] = {}  # probe/cell/reasons key -> time kept
        self._kept = 0
        self._dropped = dict.fromkeys(DROP_REASONS, 0)
        self._evicted = dict.fromkeys(EVICT_CAPS, 0)
        self._failing = False
        if config.enabled:
            with self._lock:
                try:
                    self._prepare_dir()
                    self._load_index()
                except OSError as exc:
                    self._degraded(f"cannot use {self.dir}: {exc}")

    # -- writing ------------------------------------------------------------------------------
    def keep(self, exhibit: Exhibit) -> str | None:
        """Store `exhibit`; its id, or None when it was not kept (disabled, repeat, too large, unwritable)."""
        if not self.config.enabled or set(exhibit.reasons) <= NOT_EVIDENCE:
            return None
        key = json.dumps([exhibit.probe, sorted(exhibit.cell.items()), sorted(exhibit.reasons)])
        if self._repeat(key, exhibit.time):
            return None
        files = self._render(exhibit)  # outside the lock: plotting takes a few milliseconds
        with self._lock:
            if self._repeat(key, exhibit.time, locked=True):
                return None
            size = sum(len(b) for b in files.values())
            if size > self.config.max_bytes:
                self._dropped["too_large"] += 1
                log.warning("evidence of %s %s not kept: %d bytes exceed exporter.evidence.max_bytes (%d)",
                            exhibit.probe, exhibit.cell, size, self.config.max_bytes)
                return None
            item_id = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(exhibit.time)) + "-" + secrets.token_hex(4)
            manifest = self._manifest(item_id, exhibit, files)
            files[MANIFEST] = json.dumps(manifest, ensure_ascii=False, indent=1).encode()
            try:
                self._prepare_dir()
                self._write_item(item_id, files)
            except OSError as exc:
                self._dropped["unwritable"] += 1
                self._degraded(f"no clip kept for {exhibit.probe} {exhibit.cell}: {exc}")
                return None
            if self._failing:
                log.warning("evidence dir %s is writable again; clips are kept", self.dir)
                self._failing = False
            self._index[item_id] = {**manifest, "bytes": sum(len(b) for b in files.values())}
            self._last_kept[key] = exhibit.time
            self._kept += 1
            self._evict(time.time())
            return item_id

    def _repeat(self, key: str, when: float, locked: bool = False) -> bool:
        """Whether `key` was kept less than min_interval_seconds before `when` (then counted as a repeat)."""
        if not locked:
            with self._lock:
                return self._repeat(key, when, locked=True)
        last = self._last_kept.get(key)
        if last is not None and when - last < self.config.min_interval_seconds:
            self._dropped["repeat"] += 1
            return True
        return False

    def _render(self, exhibit: Exhibit) -> dict[str, bytes]:
        files: dict[str, bytes] = {}
        clip = self._cut(exhibit.clip)
        baseline = self._cut(exhibit.baseline)
        if clip is not None:
            files["clip.wav"] = encode_wav(clip.samples, clip.sample_rate)
            title = f"{exhibit.probe} waveform and energy"
            files["waveform.svg"] = waveform_svg(clip, baseline, title).encode()
        if baseline is not None:
            files["baseline.wav"] = encode_wav(baseline.samples, baseline.sample_rate)
        if exhibit.f0 is not None or exhibit.template_f0 is not None:
            files["f0.svg"] = f0_svg(exhibit.f0, exhibit.template_f0, f"{exhibit.probe} F0 contour").encode()
        return files

    def _cut(self, audio: Audio | None) -> Audio | None:
        if audio is None:
            return None
        limit = int(self.config.max_clip_seconds * audio.sample_rate)
        return audio if len(audio.samples) <= limit else Audio(audio.samples[:limit], audio.sample_rate)

    def _manifest(self, item_id: str, exhibit: Exhibit, files: dict[str, bytes]) -> dict[str, Any]:
        def clip_info(audio: Audio | None) -> dict[str, Any] | None:
            if audio is None:
                return None
            kept = min(audio.duration_seconds, self.config.max_clip_seconds)
            return {"seconds": round(audio.duration_seconds, 3), "kept_seconds": round(kept, 3),
                    "sample_rate": audio.sample_rate}

        names = sorted(files) + [MANIFEST]
        return {
            "id": item_id, "time": round(exhibit.time, 3), "probe": exhibit.probe, "cell": dict(exhibit.cell),
            "reasons": list(exhibit.reasons), "detail": exhibit.detail[:1000], "text": exhibit.text[:500],
            "checks": [c.as_dict() for c in exhibit.checks],
            "failed_checks": [c.as_dict() for c in exhibit.checks if not c.passed],
            "clip": clip_info(exhibit.clip), "baseline": clip_info(exhibit.baseline),
            "files": [{"name": n, "type": FILE_TYPES[n],
                       "bytes": len(files[n]) if n in files else None} for n in names],
        }

    def _write_item(self, item_id: str, files: dict[str, bytes]) -> None:
        tmp = self.dir / f".{item_id}.tmp"
        try:
            _private_mkdir(tmp)
            for name, data in files.items():
                fd = os.open(tmp / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
                try:
                    os.fchmod(fd, 0o600)  # whatever the umask
                    view = memoryview(data)
                    while view:
                        view = view[os.write(fd, view):]
                finally:
                    os.close(fd)
            os.rename(tmp, self.dir / item_id)
        except OSError:
            shutil.rmtree(tmp, ignore_errors=True)
            raise

    def _prepare_dir(self) -> None:
        if not self.dir.is_dir():
            _private_mkdir(self.dir)
        st = self.dir.stat()
        if st.st_uid == os.geteuid() and stat.S_IMODE(st.st_mode) != 0o700:
            self.dir.chmod(0o700)

    def _degraded(self, message: str) -> None:
        # One warning when evidence stops being kept, then debug lines until it works again.
        (log.debug if self._failing else log.warning)("evidence: %s (the probe itself is unaffected)", message)
        self._failing = True

    # -- bounds -------------------------------------------------------------------------------
    def _evict(self, now: float) -> None:
        """Drop items past max_age, then the oldest until count and size fit (lock held)."""
        cfg = self.config
        for item_id, item in sorted(self._index.items(), key=lambda kv: kv[1]["time"]):
            if now - item["time"] > cfg.max_age_seconds:
                self._drop(item_id, "age")
        oldest = sorted(self._index, key=lambda i: self._index[i]["time"])
        while oldest and len(self._index) > cfg.max_items:
            self._drop(oldest.pop(0), "count")
        while oldest and sum(i["bytes"] for i in self._index.values()) > cfg.max_bytes:
            self._drop(oldest.pop(0), "size")

    def _drop(self, item_id: str, cap: str) -> None:
        shutil.rmtree(self.dir / item_id, ignore_errors=True)
        self._index.pop(item_id, None)
        self._evicted[cap] += 1

    def _load_index(self) -> None:
        """Read the items already on disk (a restart keeps them); clear half-written ones."""
        with os.scandir(self.dir) as entries:
            for entry in entries:
                if entry.name.startswith(".") and entry.name.endswith(".tmp"):
                    shutil.rmtree(entry.path, ignore_errors=True)
                elif ITEM_ID.match(entry.name) and entry.is_dir(follow_symlinks=False):
                    try:
                        manifest = json.loads(self._read(entry.name, MANIFEST))
                        if not isinstance(manifest.get("time"), int | float) or not isinstance(
                                manifest.get("files"), list):
                            raise ValueError("no time or file list")
                        size = sum(f.stat(follow_symlinks=False).st_size for f in os.scandir(entry.path))
                        self._index[entry.name] = {**manifest, "bytes": size}
                    except (OSError, ValueError, TypeError, AttributeError) as exc:
                        log.warning("evidence item %s is unreadable (%s); ignored", entry.path, exc)
        self._evict(time.time())

    # -- reading ------------------------------------------------------------------------------
    def items(self, since: float = 0.0, until: float = float("inf")) -> list[dict[str, Any]]:
        """Manifests of the items with since <= time <= until, oldest first (expired ones evicted first)."""
        with self._lock:
            self._evict(time.time())
            found = [dict(m) for m in self._index.values() if since <= m["time"] <= until]
        for m in found:
            m.pop("bytes", None)
        return sorted(found, key=lambda m: m["time"])

    def read_file(self, item_id: str, name: str) -> tuple[bytes, str] | None:
        """(bytes, content type) of one listed file of one item; None for anything else.

        Names are checked against the item's own list; the file is opened relative to the
        item folder with O_NOFOLLOW, so neither `..`, an absolute path nor a symlink leads out.
        """
        if not ITEM_ID.match(item_id) or name not in FILE_TYPES:
            return None
        with self._lock:
            item = self._index.get(item_id)
            if item is None or name not in {f["name"] for f in item["files"]}:
                return None
        try:
            return self._read(item_id, name), FILE_TYPES[name]
        except OSError:
            return None

    def _read(self, item_id: str, name: str) -> bytes:
        flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC
        dir_fd = os.open(self.dir / item_id, flags | os.O_DIRECTORY)
        try:
            fd = os.open(name, flags, dir_fd=dir_fd)
        finally:
            os.close(dir_fd)
        with os.fdopen(fd, "rb") as f:
            if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
                raise OSError(f"{name} is not a regular file")
            return f.read(self.config.max_bytes + 1)

    # -- metrics ------------------------------------------------------------------------------
    def collect(self) -> Iterator[Metric]:
        """tts_evidence_* from the current state."""
        with self._lock:
            count, size = len(self._index), sum(i["bytes"] for i in self._index.values())
            kept, dropped, evicted = self._kept, dict(self._dropped), dict(self._evicted)
        yield CounterMetricFamily("tts_evidence_kept", "Failed-probe evidence items written.", value=kept)
        family = CounterMetricFamily("tts_evidence_dropped", "Evidence not kept: unwritable dir or full disk, "
                                     "item over max_bytes, or a repeat within min_interval_seconds.",
                                     labels=["reason"])
        for reason, value in dropped.items():
            family.add_metric([reason], value)
        yield family
        family = CounterMetricFamily("tts_evidence_evicted", "Evidence items removed by a bound.", labels=["cap"])
        for cap, value in evicted.items():
            family.add_metric([cap], value)
        yield family
        yield GaugeMetricFamily("tts_evidence_items", "Evidence items on disk.", value=count)
        yield GaugeMetricFamily("tts_evidence_bytes", "Bytes of evidence on disk.", value=size)


def _private_mkdir(path: Path) -> None:
    """mkdir 0700 whatever the umask (parents too)."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    path.chmod(0o700)


# The store of the exporter whose probes run with a given ProbesConfig (probers receive only
# their configs). Keyed by identity; the entry holds the config so its id stays its own.
_attached: dict[int, tuple[ProbesConfig, EvidenceStore]] = {}
_attached_lock = threading.Lock()


def attach_evidence(probes: ProbesConfig, store: EvidenceStore) -> None:
    """Make `store` keep the evidence of probes run with `probes` (the exporter does this at start)."""
    with _attached_lock:
        _attached[id(probes)] = (probes, store)


def detach_evidence(probes: ProbesConfig) -> None:
    """Stop keeping evidence for `probes` (the exporter's stop)."""
    with _attached_lock:
        _attached.pop(id(probes), None)


def keep_evidence(probes: ProbesConfig | None, exhibit: Exhibit) -> str | None:
    """The probers' hook: keep `exhibit` if a store is attached; never raises (evidence is a by-product)."""
    with _attached_lock:
        entry = _attached.get(id(probes)) if probes is not None else None
    if entry is None or entry[0] is not probes:
        return None
    try:
        return entry[1].keep(exhibit)
    except Exception:  # a plotting bug must not fail the probe that found the fault
        log.exception("evidence of %s %s not kept", exhibit.probe, exhibit.cell)
        return None
