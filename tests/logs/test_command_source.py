"""Command sources: every stdout line is a log line; the command is restarted when it exits."""

from __future__ import annotations

import os
import sys
import time

from tts_sentinel.loghistory.config import LogCommandConfig, LogsConfig


def command_config(name: str, code: str, **kw) -> LogCommandConfig:
    return LogCommandConfig(
        name=name, argv=[sys.executable, "-c", code],
        restart_backoff_initial_seconds=0.05, restart_backoff_max_seconds=0.2, **kw,
    )


def test_lines_of_a_command_that_exits_are_counted_on_every_restart(wait_for, new_pipeline, value):
    code = (
        "import sys\n"
        "print('2024-06-15 14:22:03,102 [ERROR] [CUDA] Out of memory on device 0')\n"
        "print('INFO ok', flush=True)\n"
        "sys.stderr.write('torch.OutOfMemoryError: CUDA out of memory. Tried to allocate\\n')\n"
    )
    config = LogsConfig(files=[], commands=[command_config("tts", code)])
    pipeline, registry = new_pipeline(config)
    pipeline.start()
    assert wait_for(lambda: value(registry, "tts_log_lines_total", log="tts") >= 9)
    pipeline.stop()
    runs = pipeline.commands[0].starts
    assert runs >= 3
    # stop() may end the last run before it printed everything: every earlier run is complete.
    lines = value(registry, "tts_log_lines_total", log="tts")
    assert 3 * (runs - 1) <= lines <= 3 * runs
    for pattern in ("cuda_oom", "torch_oom_error", "torch_cuda_oom"):
        n = value(registry, "tts_log_pattern_matches_total", log="tts", pattern=pattern)
        assert runs - 1 <= n <= runs, pattern


def test_stderr_can_be_left_out(wait_for, new_pipeline, value):
    code = "import sys, time\nprint('out', flush=True)\nsys.stderr.write('err\\n')\ntime.sleep(60)\n"
    config = LogsConfig(files=[], commands=[command_config("tts", code, include_stderr=False)])
    pipeline, registry = new_pipeline(config)
    pipeline.start()
    assert wait_for(lambda: value(registry, "tts_log_lines_total", log="tts") >= 1)
    time.sleep(0.3)  # give a wrongly merged stderr line the chance to show up
    pipeline.stop()
    assert value(registry, "tts_log_lines_total", log="tts") == 1


def test_stop_ends_a_command_that_never_exits(wait_for, new_pipeline, value, tmp_path):
    pidfile = tmp_path / "pid"
    code = (
        f"import os, time\nopen({str(pidfile)!r}, 'w').write(str(os.getpid()))\n"
        "print('started', flush=True)\ntime.sleep(600)\n"
    )
    config = LogsConfig(files=[], commands=[command_config("tts", code)])
    pipeline, registry = new_pipeline(config)
    pipeline.start()
    assert wait_for(lambda: value(registry, "tts_log_lines_total", log="tts") == 1)
    assert value(registry, "tts_log_source_up", log="tts") == 1
    pipeline.stop()
    pid = int(pidfile.read_text())
    assert not os.path.exists(f"/proc/{pid}"), "the command outlived stop()"
    assert value(registry, "tts_log_source_up", log="tts") == 0


def test_a_command_that_cannot_start_is_an_error_not_a_crash(wait_for, new_pipeline, value, tmp_path):
    missing = LogCommandConfig(
        name="tts", argv=[str(tmp_path / "no-such-binary")],
        restart_backoff_initial_seconds=0.05, restart_backoff_max_seconds=0.1,
    )
    pipeline, registry = new_pipeline(LogsConfig(files=[], commands=[missing]))
    pipeline.start()
    assert wait_for(lambda: value(registry, "tts_log_read_errors_total", log="tts") >= 2)
    pipeline.stop()
    assert value(registry, "tts_log_lines_total", log="tts") == 0
