"""Template mining (Drain3) finds the WARN/ERROR line shapes no configured pattern covers."""

from __future__ import annotations

import io
import json
import re
import stat
from contextlib import redirect_stdout
from datetime import datetime

from tts_sentinel.cli import main
from tts_sentinel.loghistory.config import BUILTIN_PATTERNS
from tts_sentinel.loghistory.mining.learned import LearnedPatterns
from tts_sentinel.loghistory.mining.lines import LevelPrefilter, LineShape, warn_error_lines
from tts_sentinel.loghistory.mining.masks import mask
from tts_sentinel.loghistory.mining.miner import TemplateMiner
from tts_sentinel.loghistory.mining.offline import Window, WindowMiner
from tts_sentinel.loghistory.mining.state import load_miners, save_miners
from tts_sentinel.loghistory.scanner import compile_pattern
from tts_sentinel.loghistory.triage.clock import LineClock

TS = r"^(\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2})(?:[,.](\d{1,6}))?"
FMT = "%Y-%m-%d %H:%M:%S"


def sample_lines(days: int = 7) -> list[str]:
    """A week of log, one minute of lines per hour: INFO chatter, a steady error, a known OOM,
    and on the last day a new tokenizer warning."""
    lines = []
    for day in range(days):
        for hour in range(24):
            for s in range(0, 60, 5):
                t = f"2024-06-{9 + day:02d} {hour:02d}:00:{s:02d},{s * 7:03d}"
                lines.append(f"{t} [INFO] synthesized {s % 37 + 3} chars in 0.{s % 9}s, lang=zh")
                if s % 20 == 0:
                    lines.append(f"{t} [ERROR] [worker-{s % 4}] req={s * 2654435761 % 2**32:08x} "
                                 f"Synthesis engine failed: timeout after {s + 1}ms")
                if day == days - 1 and hour >= 12:
                    lines.append(f"{t} [WARNING] [WARN] Tokenizer skipped {s % 5 + 1} special chars")
            if hour % 6 == 0:
                lines.append(f"{t} [ERROR] [CUDA] Out of memory on device {hour % 2}")
    return lines


def window_miner(patterns=None, window=None, learned=None) -> WindowMiner:
    return WindowMiner(
        patterns if patterns is not None else [compile_pattern(p.name, p.regex) for p in BUILTIN_PATTERNS],
        learned or LearnedPatterns(), LineShape(TS), LineClock(TS, FMT), window, TemplateMiner(),
    )


def test_masking_hides_numbers_hex_ids_paths_and_durations():
    assert mask("took 0.35s on 10.0.0.7:8000 for /opt/models/qwen.bin id 3f2a9c1e") == \
        "took <DUR> on <IP> for <PATH> id <HEX>"
    assert mask("[worker-3] loaded Qwen3 in 120ms, 3.5GiB, pos 17") == "[worker-<NUM>] loaded Qwen3 in <DUR>, <NUM>, pos <NUM>"


def test_only_warning_and_error_lines_are_candidates():
    block = (b"t [INFO] fine\nt [WARNING] a\nt [INFO] no ERRORS here\nt [ERROR] b WARN twice\n"
             b"t CRITICAL c\n")
    assert warn_error_lines(block) == [b"t [WARNING] a", b"t [INFO] no ERRORS here", b"t [ERROR] b WARN twice",
                                       b"t CRITICAL c"]
    shape = LineShape(TS)
    assert shape.split("2024-06-15 14:22:03,102 [INFO] no ERRORS here")[0] == "INFO"  # the logger's level wins
    assert shape.split("2024-06-15 14:22:03,102 [WARNING] [WARN] Tokenizer") == ("WARNING", "[WARN] Tokenizer")
    assert shape.split("WARNING 06-15 14:22:03 [serving.py:12] slow") == ("WARNING", "06-15 14:22:03 [serving.py:12] slow")


def test_the_level_prefilter_answers_the_same_with_either_engine():
    quiet = b"2024-06-15 14:22:03,102 [INFO] synthesized 12 chars\n" * 10_000
    for engine in ("literal", "auto"):  # bytes.find per token; Hyperscan when installed
        has_levels = LevelPrefilter(engine)
        assert not has_levels(quiet)
        assert has_levels(quiet + b"2024-06-15 14:22:03,102 [ERROR] x\n")
        assert all(has_levels(b"x " + token + b" y\n") for token in (b"WARNING", b"WARN", b"CRITICAL", b"FATAL"))


def test_new_warning_is_found_with_its_count_and_known_patterns_are_left_out():
    mined = window_miner()
    mined.feed_lines(sample_lines())
    by_text = {t.text: t for t in mined.miner.all()}
    tokenizer = by_text["[WARN] Tokenizer skipped <NUM> special chars"]
    assert tokenizer.count == 12 * 12 and tokenizer.level() == "WARNING"
    failed = by_text["[worker-<NUM>] <*> Synthesis engine failed: timeout after <DUR>"]
    assert failed.count == 7 * 24 * 3 and failed.level() == "ERROR"
    assert mined.covered == 7 * 4  # the OOM lines match cuda_oom: known, never mined
    assert not any("Out of memory" in text or "synthesized" in text for text in by_text)
    # The template's regex finds its own lines, and only those.
    rx = re.compile(tokenizer.regex())
    assert all(bool(rx.search(line)) == ("Tokenizer" in line) for line in sample_lines())


def test_the_cluster_cap_keeps_the_most_recent_templates():
    def message(i: int) -> str:  # no word in common with any other message: one cluster each
        w = chr(97 + i % 26) + chr(97 + i // 26)
        return f"{w}fail {w}kind {w}happened"

    miner = TemplateMiner(max_clusters=10)
    for i in range(50):
        miner.add("ERROR", message(i), "line")
    assert len(miner.templates) == 10 == len(miner.drain.id_to_cluster)
    assert {t.text for t in miner.all()} == {message(i) for i in range(40, 50)}


def test_state_is_versioned_private_json_and_mining_goes_on_after_a_reload(tmp_path):
    miner = TemplateMiner()
    shape = LineShape(TS)
    lines = [line for line in sample_lines(1) if "[INFO]" not in line]
    for line in lines[:100]:
        miner.add(*shape.split(line), line, 1718000000.0)
    path = tmp_path / "state" / "mining-state.json"
    save_miners(path, {"inference": miner.to_dict()})
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    doc = json.loads(path.read_text())  # plain JSON: no pickled objects anywhere
    assert doc["format"] == "tts-sentinel-miner" and doc["version"] == 1
    assert "py/object" not in path.read_text()
    again = load_miners(path, 0.5, 4, 1000)["inference"]
    assert {t.id: t.count for t in again.all()} == {t.id: t.count for t in miner.all()}
    for line in lines[100:]:  # the same lines join the same templates in both
        a = miner.add(*shape.split(line), line, 1718000000.0)
        b = again.add(*shape.split(line), line, 1718000000.0)
        assert (a.id, a.count) == (b.id, b.count)
    path.write_text("{not json")
    assert load_miners(path, 0.5, 4, 1000) == {}  # a damaged file: start afresh, do not crash


def test_weekly_report_puts_the_new_template_first(tmp_path):
    end = datetime(2024, 6, 15, 23, 0, 56)
    mined = window_miner(window=Window(datetime(2024, 6, 8, 23, 0, 56), end, datetime(2024, 6, 14, 23, 0, 56)))
    mined.feed_lines(sample_lines())
    from tts_sentinel.loghistory.mining.report import build_report

    doc = build_report(mined, growth_min=2.0, min_count=2, top=20, show_all=True)
    first = doc["templates"][0]
    assert (first["status"], first["template"]) == ("new", "[WARN] Tokenizer skipped <NUM> special chars")
    assert first["first_seen"] == "2024-06-15 12:00:00" and first["last_seen"] == "2024-06-15 23:00:55"
    steady = doc["templates"][1]
    assert steady["status"] == "steady" and 0.5 < steady["growth"] < 2


def test_cli_report_json_and_text(tmp_path):
    log = tmp_path / "inference.log"
    log.write_text("\n".join(sample_lines()) + "\n")
    cfg = tmp_path / "cfg.yml"
    cfg.write_text(f"exporter:\n  state_dir: {tmp_path / 'state'}\n")
    out = io.StringIO()
    with redirect_stdout(out):
        assert main(["mine", "--config", str(cfg), "--file", str(log), "--since", "7d", "--json"]) == 0
    doc = json.loads(out.getvalue())
    assert doc["window"]["end"] == "2024-06-15 23:00:55"  # the window ends at the log's last line
    (only,) = doc["templates"]  # steady templates are left out unless --all
    assert only["status"] == "new" and only["count"] == 144
    assert only["suggested_name"] == "tokenizer_skipped_special_chars"
    assert doc["covered_by_patterns"] == 7 * 4
    out = io.StringIO()
    with redirect_stdout(out):  # the old flags still work
        assert main(["mine", "--config", str(cfg), "--file", str(log), "--top", "5", "--min-count", "2",
                     "--similarity", "0.6", "--max-mb", "64"]) == 0
    assert "new" in out.getvalue() and "name: tokenizer_skipped_special_chars" in out.getvalue()
    with redirect_stdout(io.StringIO()):
        assert main(["mine", "--config", str(cfg), "--file", str(tmp_path / "missing.log")]) == 2
        assert main(["mine", "--config", str(cfg), "--file", str(log), "--since", "a week"]) == 2


def test_a_template_growing_fast_is_reported_as_growing():
    from tts_sentinel.loghistory.mining.report import build_report

    lines = []
    for day in range(7):
        for hour in range(24):
            per_hour = 8 if day == 6 else 1  # eight times the rate on the last day
            lines += [f"2024-06-{9 + day:02d} {hour:02d}:{m:02d}:00,000 [ERROR] GPU {m % 2} throttled at {80 + m}C"
                      for m in range(per_hour)]
    end = datetime(2024, 6, 15, 23, 59)
    mined = window_miner(window=Window(datetime(2024, 6, 8, 23, 59), end, datetime(2024, 6, 14, 23, 59)))
    mined.feed_lines(lines)
    (row,) = build_report(mined, growth_min=2.0, min_count=2, top=20, show_all=False)["templates"]
    assert row["status"] == "growing" and row["recent_count"] == 8 * 24 and 7 < row["growth"] < 9


def test_mine_log_reads_the_archives_inside_the_window(tmp_path):
    import gzip
    import os

    logs = tmp_path / "logs"
    logs.mkdir()
    week = sample_lines()
    split = next(i for i, line in enumerate(week) if line.startswith("2024-06-15"))
    with gzip.open(logs / "inference.log.1.gz", "wt") as f:
        f.write("\n".join(week[:split]) + "\n")
    (logs / "inference.log").write_text("\n".join(week[split:]) + "\n")
    with gzip.open(logs / "inference.log.2.gz", "wt") as f:  # a month old: outside the window, not read
        f.write("2024-05-15 10:00:00,000 [ERROR] [worker-1] ancient failure 1\n" * 50)
    for name, day in (("inference.log.1.gz", 14), ("inference.log", 15), ("inference.log.2.gz", 15 - 31)):
        when = datetime(2024, 6, 1).timestamp() + (day - 1) * 86400 + 86000
        os.utime(logs / name, (when, when))
    cfg = tmp_path / "cfg.yml"
    cfg.write_text(f"exporter:\n  state_dir: {tmp_path / 'state'}\n  logs:\n    files:\n"
                   f"      - {{name: inference, path: {logs / 'inference.log'}}}\n")
    rc, out = 0, io.StringIO()
    with redirect_stdout(out):
        rc = main(["mine", "--config", str(cfg), "--log", "inference", "--since", "6d", "--all", "--json"])
    doc = json.loads(out.getvalue())
    assert rc == 0 and [os.path.basename(f) for f in doc["files"]] == ["inference.log.1.gz", "inference.log"]
    counts = {t["template"]: t["count"] for t in doc["templates"]}
    assert counts["[WARN] Tokenizer skipped <NUM> special chars"] == 144
    # the window starts 6 days before the last line (2024-06-15 23:00:55): June 9 is outside
    assert counts["[worker-<NUM>] <*> Synthesis engine failed: timeout after <DUR>"] == 6 * 24 * 3
    assert not any("ancient" in t for t in counts)
