"""LogPipeline: follows appends and rotations, counts lines and patterns, resumes after restart."""

from __future__ import annotations

import os
import time

from tts_sentinel.loghistory.config import BUILTIN_PATTERNS

OOM = b"2024-06-15 14:22:03,102 [ERROR] [CUDA] Out of memory on device 0\n"
SILENT = b"2024-06-15 14:22:03,105 [WARNING] Health check failed: audio output silent for 8s\n"
INFO = b"2024-06-15 14:22:04,000 [INFO] synthesized 12 chars in 0.3s\n"


def append(path, data: bytes) -> None:
    with open(path, "ab") as f:
        f.write(data)



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


def test_last_match_time_is_set_only_by_a_match(make_config, new_pipeline, logdir):
    # Alert rules compare it with the process's start time: a count alert ends when the process
    # that logged the line is replaced. No match yet: no series (not a 0 that reads as 1970).
    pipeline, registry = new_pipeline(make_config())
    name = "tts_log_pattern_last_match_timestamp_seconds"
    append(logdir / "inference.log", INFO)
    pipeline.poll_once()
    assert registry.get_sample_value(name, {"log": "inference", "pattern": "cuda_oom"}) is None
    before = time.time()
    append(logdir / "inference.log", INFO + OOM)
    pipeline.poll_once()
    first = registry.get_sample_value(name, {"log": "inference", "pattern": "cuda_oom"})
    assert first is not None and before <= first <= time.time()
    assert registry.get_sample_value(name, {"log": "inference", "pattern": "audio_silent"}) is None
    time.sleep(0.01)
    append(logdir / "inference.log", INFO * 2)
    pipeline.poll_once()
    assert registry.get_sample_value(name, {"log": "inference", "pattern": "cuda_oom"}) == first
    append(logdir / "inference.log", OOM)
    pipeline.poll_once()
    assert registry.get_sample_value(name, {"log": "inference", "pattern": "cuda_oom"}) > first


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
    wait_for, make_config, new_pipeline, value, logdir, tmp_path
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


def test_writer_still_appending_to_the_renamed_file_is_read_until_rotate_wait(
    make_config, new_pipeline, value, logdir
):
    pipeline, registry = new_pipeline(make_config(rotate_wait_seconds=3600))
    log = logdir / "webui.log"
    with open(log, "ab", buffering=0) as old_fd:
        old_fd.write(INFO)
        pipeline.poll_once()
        os.rename(log, logdir / "webui.log.1")
        append(log, INFO)  # the new file
        pipeline.poll_once()
        old_fd.write(OOM)  # the service has not reopened its log yet
        pipeline.poll_once()
    assert value(registry, "tts_log_lines_total", log="webui") == 3
    assert value(registry, "tts_log_pattern_matches_total", log="webui", pattern="cuda_oom") == 1


def test_concurrent_writer_with_rotations_loses_and_repeats_nothing(wait_for, make_config, new_pipeline, value, logdir):
    import shutil
    import threading

    pipeline, registry = new_pipeline(make_config(poll_interval_seconds=0.005, rotate_wait_seconds=0.05))
    pipeline.start()
    written = {"webui": 0, "inference": 0}

    def writer(name: str, copytruncate: bool) -> None:
        path = logdir / f"{name}.log"
        for gen in range(12):
            with open(path, "ab") as f:
                for _ in range(400):
                    written[name] += 1
                    f.write(b"2024-06-15 14:22:03,102 [INFO] line %d\n" % written[name])
                    if written[name] % 50 == 0:
                        f.flush()
            rotated = logdir / f"{name}.log.{gen}"
            if copytruncate:
                shutil.copyfile(path, rotated)
                with open(path, "r+b") as f:
                    f.truncate(0)
            else:
                os.rename(path, rotated)

    threads = [threading.Thread(target=writer, args=(n, n == "inference")) for n in written]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for name, n in written.items():
        assert wait_for(lambda name=name, n=n: value(registry, "tts_log_lines_total", log=name) >= n)
    time.sleep(0.2)  # a double count would show up now
    pipeline.stop()
    for name, n in written.items():
        assert value(registry, "tts_log_lines_total", log=name) == n, name


def test_configured_pattern_counts_only_on_its_logs(make_config, new_pipeline, value, logdir, tmp_path):
    from tts_sentinel.loghistory.config import PatternConfig

    extra = [PatternConfig(name="tokenizer_skipped", regex=r"Tokenizer skipped \d+ special chars",
                           logs=["inference"])]
    pipeline, registry = new_pipeline(make_config(extra_patterns=extra))
    skipped = b"2024-06-15 14:22:04,000 [WARN] Tokenizer skipped 3 special chars\n"
    append(logdir / "inference.log", skipped * 2)
    append(logdir / "webui.log", skipped)
    pipeline.poll_once()
    assert registry.get_sample_value(
        "tts_log_pattern_matches_total", {"log": "inference", "pattern": "tokenizer_skipped"}) == 2
    # No series at all for a log the pattern is not configured on: label values stay bounded.
    assert registry.get_sample_value(
        "tts_log_pattern_matches_total", {"log": "webui", "pattern": "tokenizer_skipped"}) is None
    assert value(registry, "tts_log_bytes_total", log="inference") == 2 * len(skipped)


def test_lag_shows_bytes_written_and_not_read_yet(make_config, new_pipeline, value, logdir):
    pipeline, registry = new_pipeline(make_config())
    append(logdir / "inference.log", INFO * 10)
    pipeline.poll_once()
    assert value(registry, "tts_log_lag_bytes", log="inference") == 0
    append(logdir / "inference.log", INFO * 1000)
    assert value(registry, "tts_log_lag_bytes", log="inference") == len(INFO) * 1000
    pipeline.poll_once()
    assert value(registry, "tts_log_lag_bytes", log="inference") == 0
    assert value(registry, "tts_log_lines_total", log="inference") == 1010


def test_unknown_log_in_a_pattern_is_a_config_error(make_config):
    import pytest
    from pydantic import ValidationError

    from tts_sentinel.loghistory.config import PatternConfig

    with pytest.raises(ValidationError, match="unknown logs"):
        make_config(extra_patterns=[PatternConfig(name="x_y", regex="x", logs=["nope"])])
    with pytest.raises(ValidationError, match="pattern names must be unique"):
        make_config(extra_patterns=[PatternConfig(name="cuda_oom", regex="x")])


def test_restart_in_the_middle_of_a_long_line_counts_it_once(make_config, new_pipeline, value, logdir, tmp_path):
    config = make_config(max_line_bytes=256)
    state = tmp_path / "state"
    long_line = OOM[:-1] + b"x" * 1000 + b"\n"
    first, reg1 = new_pipeline(config, state)
    append(logdir / "webui.log", INFO + long_line[:600])  # the long line is cut and skipped to its end
    first.poll_once()
    first.stop()
    append(logdir / "webui.log", long_line[600:] + INFO)
    second, reg2 = new_pipeline(config, state)
    second.poll_once()

    def both(name: str, **labels: str) -> float:
        return value(reg1, name, log="webui", **labels) + value(reg2, name, log="webui", **labels)

    assert both("tts_log_lines_total") == 3
    assert both("tts_log_long_lines_total") == 1
    assert both("tts_log_pattern_matches_total", pattern="cuda_oom") == 1


def test_stopping_a_pipeline_that_never_started_keeps_the_saved_offsets(
    make_config, new_pipeline, value, logdir, tmp_path
):
    config, state = make_config(), tmp_path / "state"
    append(logdir / "inference.log", INFO * 5)
    first, _ = new_pipeline(config, state)
    first.poll_once()
    first.stop()
    never_started, _ = new_pipeline(config, state)  # e.g. the exporter could not bind its port
    never_started.stop()
    append(logdir / "inference.log", OOM)
    third, registry = new_pipeline(config, state)
    third.poll_once()
    assert value(registry, "tts_log_lines_total", log="inference") == 1
