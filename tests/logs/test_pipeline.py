"""LogPipeline: follows appends and rotations, counts lines and patterns, resumes after restart."""

from __future__ import annotations

import os
import time

from exporter.logs.config import BUILTIN_PATTERNS

OOM = b"2024-06-15 14:22:03,102 [ERROR] [CUDA] Out of memory on device 0\n"
SILENT = b"2024-06-15 14:22:03,105 [WARNING] Health check failed: audio output silent for 8s\n"
INFO = b"2024-06-15 14:22:04,000 [INFO] synthesized 12 chars in 0.3s\n"


def append(path, data: bytes) -> None:
    with open(path, "ab") as f:
        f.write(data)


def wait_for(cond, deadline_s: float = 10.0) -> bool:
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.02)
    return cond()


def test_every_log_and_pattern_series_exists_at_zero(make_config, new_pipeline, value):
    config = make_config()
    _, registry = new_pipeline(config)
    for log in ("webui", "inference", "health"):
        assert registry.get_sample_value("tts_log_lines_total", {"log": log}) == 0
        for p in BUILTIN_PATTERNS:
            labels = {"log": log, "pattern": p.name}
            assert registry.get_sample_value("tts_log_pattern_matches_total", labels) == 0


def test_counts_appended_lines_and_matches(make_config, new_pipeline, value, logdir):
    pipeline, registry = new_pipeline(make_config())
    append(logdir / "inference.log", INFO * 3 + OOM)
    pipeline.poll_once()
    assert value(registry, "tts_log_lines_total", log="inference") == 4
    assert value(registry, "tts_log_pattern_matches_total", log="inference", pattern="cuda_oom") == 1
    append(logdir / "inference.log", OOM * 2 + INFO)
    pipeline.poll_once()
    assert value(registry, "tts_log_lines_total", log="inference") == 7
    assert value(registry, "tts_log_pattern_matches_total", log="inference", pattern="cuda_oom") == 3
    assert value(registry, "tts_log_pattern_matches_total", log="inference", pattern="audio_silent") == 0


def test_partial_line_waits_for_its_newline(make_config, new_pipeline, value, logdir):
    pipeline, registry = new_pipeline(make_config())
    append(logdir / "health.log", SILENT[:30])
    pipeline.poll_once()
    assert value(registry, "tts_log_lines_total", log="health") == 0
    append(logdir / "health.log", SILENT[30:])
    pipeline.poll_once()
    assert value(registry, "tts_log_lines_total", log="health") == 1
    assert value(registry, "tts_log_pattern_matches_total", log="health", pattern="audio_silent") == 1


def test_rename_rotation_reads_old_file_to_its_end(make_config, new_pipeline, value, logdir):
    pipeline, registry = new_pipeline(make_config())
    log = logdir / "webui.log"
    append(log, INFO)
    pipeline.poll_once()
    append(log, OOM)  # written before the rename, not read yet
    os.rename(log, logdir / "webui.log.2024-06-15")
    append(log, SILENT)
    pipeline.poll_once()
    pipeline.poll_once()
    assert value(registry, "tts_log_lines_total", log="webui") == 3
    assert value(registry, "tts_log_pattern_matches_total", log="webui", pattern="cuda_oom") == 1
    assert value(registry, "tts_log_pattern_matches_total", log="webui", pattern="audio_silent") == 1
    assert value(registry, "tts_log_rotations_total", log="webui") == 1


def test_start_at_end_skips_history_like_tail_f(make_config, new_pipeline, value, logdir):
    append(logdir / "webui.log", OOM * 5)
    pipeline, registry = new_pipeline(make_config(start_at="end"))
    pipeline.poll_once()
    assert value(registry, "tts_log_lines_total", log="webui") == 0
    append(logdir / "webui.log", OOM)
    pipeline.poll_once()
    assert value(registry, "tts_log_pattern_matches_total", log="webui", pattern="cuda_oom") == 1


def test_file_that_appears_later_is_read_from_its_start(make_config, new_pipeline, value, logdir):
    pipeline, registry = new_pipeline(make_config(start_at="end"))
    pipeline.poll_once()
    append(logdir / "health.log", SILENT * 2)
    pipeline.poll_once()
    assert value(registry, "tts_log_pattern_matches_total", log="health", pattern="audio_silent") == 2


def test_background_thread_counts_and_restart_resumes_exactly(
    make_config, new_pipeline, value, logdir, tmp_path
):
    config = make_config()
    state = tmp_path / "state"
    pipeline, registry = new_pipeline(config, state)
    pipeline.start()
    append(logdir / "inference.log", INFO * 10)
    assert wait_for(lambda: value(registry, "tts_log_lines_total", log="inference") == 10)
    pipeline.stop()
    append(logdir / "inference.log", OOM * 4)  # written while the exporter is down
    second, registry2 = new_pipeline(config, state)
    second.start()
    assert wait_for(lambda: value(registry2, "tts_log_lines_total", log="inference") == 4)
    second.stop()
    assert value(registry2, "tts_log_pattern_matches_total", log="inference", pattern="cuda_oom") == 4
    assert value(registry2, "tts_log_lines_total", log="inference") == 4
