"""The evidence store: what it keeps, its bounds, its file modes, and how it degrades."""

from __future__ import annotations

import json
import logging
import os
import resource
import signal
import stat
import time

import numpy as np
import pytest
from prometheus_client import CollectorRegistry, generate_latest

from tests.evidence.exhibits import exhibit, store_at, tone
from tts_sentinel.exporter.audio.wav import Audio, decode_wav
from tts_sentinel.exporter.evidence import EvidenceConfig, attach_evidence, detach_evidence, keep_evidence
from tts_sentinel.exporter.evidence_exhibit import Exhibit
from tts_sentinel.exporter.probes.config import ProbesConfig


def item_dirs(path):
    return sorted(p.name for p in path.iterdir())


def metrics(store) -> str:
    registry = CollectorRegistry()
    registry.register(store)
    return generate_latest(registry).decode()


def test_an_item_holds_the_clip_plots_and_checks(tmp_path):
    store = store_at(tmp_path / "ev")
    item_id = store.keep(exhibit(time.time()))
    [item] = store.items()
    assert item["id"] == item_id and item["probe"] == "synthesis" and item["cell"] == {"lang": "zh", "speaker": "Vivian"}
    assert item["failed_checks"] == [{"name": "silence_ratio", "value": 1.0, "op": "<=", "threshold": 0.7,
                                      "passed": False, "unit": "", "note": ""}]
    assert {f["name"] for f in item["files"]} == {"clip.wav", "waveform.svg", "evidence.json"}
    data, content_type = store.read_file(item_id, "clip.wav")
    assert content_type == "audio/wav" and decode_wav(data).duration_seconds == pytest.approx(1.5, abs=0.01)
    assert store.read_file(item_id, "baseline.wav") is None, "only listed files are served"


def test_count_cap_keeps_the_newest(tmp_path):
    store = store_at(tmp_path / "ev", max_items=3)
    now = time.time()
    ids = [store.keep(exhibit(now - 50 + i, speaker=f"s{i}")) for i in range(5)]
    assert [i["id"] for i in store.items()] == ids[2:]
    assert item_dirs(tmp_path / "ev") == sorted(ids[2:])
    assert 'tts_evidence_evicted_total{cap="count"} 2.0' in metrics(store)


def test_size_cap_keeps_the_newest_that_fit(tmp_path):
    probe = store_at(tmp_path / "measure")
    probe.keep(exhibit(time.time(), speaker="s9"))
    one = sum(f.stat().st_size for f in next((tmp_path / "measure").iterdir()).iterdir())
    store = store_at(tmp_path / "ev", max_bytes=int(one * 2.5))
    now = time.time()
    ids = [store.keep(exhibit(now - 50 + i, speaker=f"s{i}")) for i in range(4)]
    assert [i["id"] for i in store.items()] == ids[2:]
    text = metrics(store)
    assert 'tts_evidence_evicted_total{cap="size"} 2.0' in text
    stored = float(next(line.split()[1] for line in text.splitlines() if line.startswith("tts_evidence_bytes ")))
    assert stored == pytest.approx(2 * one, abs=16) and stored <= one * 2.5


def test_an_item_larger_than_the_whole_cap_is_not_kept(tmp_path):
    store = store_at(tmp_path / "ev", max_bytes=64 * 1024)
    assert store.keep(exhibit(time.time(), seconds=5.0)) is None
    assert store.items() == [] and 'tts_evidence_dropped_total{reason="too_large"} 1.0' in metrics(store)


def test_age_cap_drops_old_items_on_write_and_on_read(tmp_path):
    store = store_at(tmp_path / "ev", max_age_seconds=3600)
    now = time.time()
    store.keep(exhibit(now - 7200, speaker="old"))
    young = store.keep(exhibit(now - 3597, speaker="young"))
    assert [i["id"] for i in store.items()] == [young]
    time.sleep(3.5)  # the young one passes the hour too: a read evicts it, no new failure needed
    assert store.items() == [] and item_dirs(tmp_path / "ev") == []
    assert 'tts_evidence_evicted_total{cap="age"} 2.0' in metrics(store)


def test_a_lasting_fault_keeps_its_first_clip_and_counts_repeats(tmp_path):
    store = store_at(tmp_path / "ev", min_interval_seconds=300)
    t = time.time() - 1000
    first = store.keep(exhibit(t))
    assert store.keep(exhibit(t + 60)) is None, "same cell, same reasons, a minute later"
    other_cell = store.keep(exhibit(t + 60, speaker="Ryan"))
    other_reason = store.keep(exhibit(t + 60, reasons=("zero_run",)))
    later = store.keep(exhibit(t + 301))
    assert None not in (first, other_cell, other_reason, later)
    assert 'tts_evidence_dropped_total{reason="repeat"} 1.0' in metrics(store)


def test_a_missing_baseline_is_not_audio_evidence(tmp_path):
    store = store_at(tmp_path / "ev")
    assert store.keep(exhibit(time.time(), reasons=("no_baseline",))) is None
    assert store.items() == []


def test_a_runaway_clip_is_cut_to_max_clip_seconds(tmp_path):
    store = store_at(tmp_path / "ev", max_clip_seconds=2.0)
    item_id = store.keep(exhibit(time.time(), seconds=6.0, reasons=("too_long",)))
    [item] = store.items()
    assert item["clip"] == {"seconds": 6.0, "kept_seconds": 2.0, "sample_rate": 24000}
    assert decode_wav(store.read_file(item_id, "clip.wav")[0]).duration_seconds == pytest.approx(2.0)


@pytest.mark.parametrize("umask", [0o000, 0o022, 0o277])
def test_dir_is_0700_and_files_0600_whatever_the_umask(tmp_path, umask):
    old = os.umask(umask)
    try:
        store = store_at(tmp_path / "state" / "evidence")
        item_id = store.keep(exhibit(time.time()))
    finally:
        os.umask(old)
    root = tmp_path / "state" / "evidence"
    assert stat.S_IMODE(root.stat().st_mode) == 0o700
    assert stat.S_IMODE((root / item_id).stat().st_mode) == 0o700
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in (root / item_id).iterdir()}
    assert set(modes.values()) == {0o600}, modes


def test_a_restart_finds_the_items_and_clears_half_written_ones(tmp_path):
    root = tmp_path / "ev"
    kept = store_at(root).keep(exhibit(time.time()))
    (root / ".20260101T000000Z-deadbeef.tmp").mkdir()
    broken = root / "20260101T000000Z-0badf00d"
    broken.mkdir()
    (broken / "evidence.json").write_text("{not json")
    again = store_at(root)
    assert [i["id"] for i in again.items()] == [kept]
    assert not (root / ".20260101T000000Z-deadbeef.tmp").exists()


def test_a_file_in_place_of_the_dir_degrades_to_no_clip_with_one_log_line(tmp_path, caplog):
    blocker = tmp_path / "state"
    blocker.write_text("a file where the evidence dir's parent should be")
    caplog.set_level(logging.DEBUG, logger="tts_sentinel.exporter.evidence")
    store = store_at(blocker / "evidence")
    results = [store.keep(exhibit(time.time() + i, speaker=f"s{i}")) for i in range(3)]
    assert results == [None, None, None] and store.items() == []
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and "the probe itself is unaffected" in warnings[0].getMessage()
    assert 'tts_evidence_dropped_total{reason="unwritable"} 3.0' in metrics(store)


def test_a_full_disk_leaves_no_half_item_and_recovers(tmp_path, caplog):
    store = store_at(tmp_path / "ev")
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # the write fails with EFBIG instead
    resource.setrlimit(resource.RLIMIT_FSIZE, (16 * 1024, hard))
    try:
        assert store.keep(exhibit(time.time())) is None
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, previous)
    assert item_dirs(tmp_path / "ev") == [], "the half-written item is removed"
    caplog.set_level(logging.WARNING, logger="tts_sentinel.exporter.evidence")
    assert store.keep(exhibit(time.time() + 1)) is not None
    assert "writable again" in caplog.text


def test_the_hook_never_raises_and_keeps_only_for_its_own_exporter(tmp_path):
    store = store_at(tmp_path / "ev")
    probes, other = ProbesConfig(), ProbesConfig()
    attach_evidence(probes, store)
    try:
        assert keep_evidence(other, exhibit(time.time())) is None, "another exporter's probes"
        assert keep_evidence(None, exhibit(time.time())) is None, "a CLI probe run without a store"
        broken = Exhibit("synthesis", {"lang": "zh"}, ["silent"], "", clip=Audio(np.array(["x"]), 24000))
        assert keep_evidence(probes, broken) is None
        assert keep_evidence(probes, exhibit(time.time())) is not None
    finally:
        detach_evidence(probes)
    assert keep_evidence(probes, exhibit(time.time() + 1)) is None


def test_disabled_keeps_nothing_and_creates_no_dir(tmp_path):
    from tts_sentinel.exporter.evidence import EvidenceStore

    store = EvidenceStore(EvidenceConfig(enabled=False, dir=tmp_path / "ev"), tmp_path)
    assert store.keep(exhibit(time.time())) is None and not (tmp_path / "ev").exists()


def test_the_manifest_is_plain_json_with_the_text_and_clip_facts(tmp_path):
    store = store_at(tmp_path / "ev")
    item_id = store.keep(Exhibit("quality", {"lang": "zh", "speaker": "Vivian", "sample": "seed"}, ["stoi"],
                                 "stoi 0.41 (min 0.85)", [], "你好", clip=tone(), baseline=tone(hz=180)))
    manifest = json.loads(store.read_file(item_id, "evidence.json")[0])
    assert manifest["text"] == "你好" and manifest["baseline"]["sample_rate"] == 24000
    assert {f["name"] for f in manifest["files"]} >= {"clip.wav", "baseline.wav", "waveform.svg"}
