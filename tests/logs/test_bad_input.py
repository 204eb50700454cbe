"""Bad input never crashes the tailer, never loses the lines around it, and is counted."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import tracemalloc

import pytest

OOM = b"2024-06-15 14:22:03,102 [ERROR] [CUDA] Out of memory on device 0\n"
INFO = b"2024-06-15 14:22:04,000 [INFO] ok\n"


def append(path, data: bytes) -> None:
    with open(path, "ab") as f:
        f.write(data)


def test_nul_bytes_are_just_bytes(make_config, new_pipeline, value, logdir):
    pipeline, registry = new_pipeline(make_config())
    nul_oom = OOM.replace(b"[ERROR]", b"[ERROR]\x00")
    append(logdir / "inference.log", b"\x00\x00garbage\x00\n" + nul_oom + INFO)
    pipeline.poll_once()
    assert value(registry, "tts_log_lines_total", log="inference") == 3
    assert value(registry, "tts_log_pattern_matches_total", log="inference", pattern="cuda_oom") == 1


def test_crlf_lines_count_once_and_match(make_config, new_pipeline, value, logdir):
    pipeline, registry = new_pipeline(make_config())
    append(logdir / "webui.log", OOM.replace(b"\n", b"\r\n") * 3 + INFO.replace(b"\n", b"\r\n"))
    pipeline.poll_once()
    assert value(registry, "tts_log_lines_total", log="webui") == 4
    assert value(registry, "tts_log_pattern_matches_total", log="webui", pattern="cuda_oom") == 3


def test_invalid_utf8_is_counted_and_still_scanned(make_config, new_pipeline, value, logdir):
    pipeline, registry = new_pipeline(make_config())
    bad = b"2024-06-15 14:22:03,102 [ERROR] \xff\xfe\xc3 [CUDA] Out of memory on device 1\n"
    append(logdir / "inference.log", INFO + bad + "2024-06-15 14:22:05,000 [INFO] 你好\n".encode() + bad)
    pipeline.poll_once()
    assert value(registry, "tts_log_lines_total", log="inference") == 4
    assert value(registry, "tts_log_invalid_utf8_lines_total", log="inference") == 2
    assert value(registry, "tts_log_pattern_matches_total", log="inference", pattern="cuda_oom") == 2


@pytest.mark.parametrize("pieces", [1, 40], ids=["one-write", "forty-writes"])
def test_ten_megabyte_line_is_cut_counted_and_not_buffered(make_config, new_pipeline, value, logdir, pieces):
    pipeline, registry = new_pipeline(make_config())
    huge = OOM[:-1] + b"x" * (10 * 1024 * 1024) + b"\n"
    step = len(huge) // pieces + 1
    tracemalloc.start()
    try:
        for i in range(0, len(huge), step):
            append(logdir / "inference.log", huge[i : i + step])
            pipeline.poll_once()
        append(logdir / "inference.log", OOM + INFO)
        pipeline.poll_once()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert value(registry, "tts_log_lines_total", log="inference") == 3
    assert value(registry, "tts_log_long_lines_total", log="inference") == 1
    assert value(registry, "tts_log_pattern_matches_total", log="inference", pattern="cuda_oom") == 2
    # Reading is by blocks (4 MiB here); the 10 MiB line itself is never held whole.
    assert peak < 3 * 4 * 1024 * 1024 + 2 * 1024 * 1024


def test_empty_file_counts_nothing_and_is_followed(make_config, new_pipeline, value, logdir):
    (logdir / "health.log").write_bytes(b"")
    pipeline, registry = new_pipeline(make_config())
    pipeline.poll_once()
    assert value(registry, "tts_log_lines_total", log="health") == 0
    assert value(registry, "tts_log_read_errors_total", log="health") == 0
    append(logdir / "health.log", INFO)
    pipeline.poll_once()
    assert value(registry, "tts_log_lines_total", log="health") == 1


def test_unusable_path_is_an_error_counted_and_the_rest_keeps_going(
    make_config, new_pipeline, value, logdir, caplog
):
    os.symlink("webui.log", logdir / "webui.log")  # a symlink loop: stat fails with ELOOP
    (logdir / "health.log").mkdir()  # a directory where the log should be
    pipeline, registry = new_pipeline(make_config())
    append(logdir / "inference.log", OOM)
    pipeline.poll_once()
    pipeline.poll_once()
    assert value(registry, "tts_log_read_errors_total", log="webui") == 2
    assert value(registry, "tts_log_read_errors_total", log="health") == 2
    assert value(registry, "tts_log_source_up", log="webui") == 0
    assert value(registry, "tts_log_pattern_matches_total", log="inference", pattern="cuda_oom") == 1
    messages = [r.getMessage() for r in caplog.records if "webui" in r.getMessage()]
    assert len(messages) == 1, "each distinct problem is reported once, not on every poll"
    assert "symbolic links" in messages[0] or "cannot stat" in messages[0]
    # Fixed by the operator: the tailer picks the file up without a restart.
    (logdir / "webui.log").unlink()
    append(logdir / "webui.log", OOM)
    pipeline.poll_once()
    assert value(registry, "tts_log_pattern_matches_total", log="webui", pattern="cuda_oom") == 1
    assert value(registry, "tts_log_source_up", log="webui") == 1


CHILD = """
import json, sys, time
from pathlib import Path
from prometheus_client import CollectorRegistry
from tts_sentinel.loghistory.config import LogFileConfig, LogsConfig
from tts_sentinel.exporter.logs.pipeline import LogPipeline

d = Path(sys.argv[1])
config = LogsConfig(files=[LogFileConfig(name=n, path=d / f"{n}.log") for n in ("webui", "health")],
                    start_at="beginning")
registry = CollectorRegistry()
pipeline = LogPipeline(config, registry, d / "state")

def report(name):
    v = lambda m, **l: registry.get_sample_value(m, l) or 0
    doc = {"errors": v("tts_log_read_errors_total", log="webui"),
           "oom": v("tts_log_pattern_matches_total", log="webui", pattern="cuda_oom"),
           "health_lines": v("tts_log_lines_total", log="health")}
    (d / (name + ".tmp")).write_text(json.dumps(doc))
    (d / (name + ".tmp")).rename(d / name)  # the parent never reads a half-written report

pipeline.poll_once()
pipeline.poll_once()
report("first.json")
deadline = time.monotonic() + 30
while not (d / "fixed").exists() and time.monotonic() < deadline:
    time.sleep(0.02)
pipeline.poll_once()
report("second.json")
pipeline.stop()
"""


def test_file_without_read_permission_is_an_error_and_retried(tmp_path):
    # Root reads any file; without CAP_DAC_OVERRIDE/CAP_DAC_READ_SEARCH it obeys the mode like anyone.
    argv = [sys.executable, "-c", CHILD]
    if os.geteuid() == 0:
        if shutil.which("setpriv") is None:
            pytest.skip("running as root and setpriv (util-linux) is missing: cannot make a file unreadable")
        argv = ["setpriv", "--bounding-set", "-dac_override,-dac_read_search", *argv]
    d = tmp_path / "perm"
    d.mkdir()
    try:
        log = d / "webui.log"
        log.write_bytes(OOM)
        log.chmod(0)
        (d / "health.log").write_bytes(INFO * 2)
        (d / "health.log").chmod(0o644)
        child = subprocess.Popen([*argv, str(d)])
        try:
            deadline = time.monotonic() + 60
            while not (d / "first.json").exists() and child.poll() is None and time.monotonic() < deadline:
                time.sleep(0.02)
            first = json.loads((d / "first.json").read_text())
            assert first["errors"] == 2  # each failed poll counts
            assert first["oom"] == 0
            assert first["health_lines"] == 2  # the other log keeps going
            log.chmod(0o644)
            (d / "fixed").write_text("")
            assert child.wait(timeout=60) == 0
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()
        second = json.loads((d / "second.json").read_text())
        assert second["oom"] == 1 and second["errors"] == 2
    finally:
        log.chmod(0o644)


def test_corrupt_offsets_file_is_reported_and_ignored(make_config, new_pipeline, value, logdir, tmp_path):
    state = tmp_path / "state"
    state.mkdir()
    (state / "log-offsets.json").write_bytes(b"{not json")
    append(logdir / "webui.log", OOM)
    pipeline, registry = new_pipeline(make_config(), state)
    pipeline.poll_once()
    assert value(registry, "tts_log_pattern_matches_total", log="webui", pattern="cuda_oom") == 1
    pipeline.stop()
    assert b"version" in (state / "log-offsets.json").read_bytes()


def test_saved_offset_beyond_the_end_is_rejected(make_config, new_pipeline, value, logdir, tmp_path):
    state = tmp_path / "state"
    config = make_config()
    append(logdir / "webui.log", INFO * 5)
    first, _ = new_pipeline(config, state)
    first.poll_once()
    first.stop()
    # Rewritten in place while the exporter was down (same inode, shorter, same first bytes).
    with open(logdir / "webui.log", "r+b") as f:
        f.truncate(len(INFO) * 2)
    second, registry = new_pipeline(config, state)
    second.poll_once()
    assert value(registry, "tts_log_truncations_total", log="webui") == 1
    assert value(registry, "tts_log_lines_total", log="webui") == 2
