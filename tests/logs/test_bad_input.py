"""Bad input never crashes the tailer, never loses the lines around it, and is counted."""

from __future__ import annotations

import os
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


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_file_without_read_permission_is_an_error_and_retried(make_config, new_pipeline, value, logdir):
    log = logdir / "webui.log"
    append(log, OOM)
    log.chmod(0)
    pipeline, registry = new_pipeline(make_config())
    pipeline.poll_once()
    assert value(registry, "tts_log_read_errors_total", log="webui") >= 1
    log.chmod(0o644)
    pipeline.poll_once()
    assert value(registry, "tts_log_pattern_matches_total", log="webui", pattern="cuda_oom") == 1


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
