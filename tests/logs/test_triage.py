"""Triage: merge current and rotated logs, keep the window, name the root cause."""

from __future__ import annotations

import gzip
import io
import json
import os
from contextlib import redirect_stderr, redirect_stdout
from datetime import UTC, datetime, timedelta, timezone

import pytest

from tts_sentinel.cli import main
from tts_sentinel.loghistory.config import LogFileConfig, LogsConfig
from tts_sentinel.loghistory.triage import diagnose, parse_duration

NOW = datetime(2024, 6, 15, 14, 30, 0)
OOM = "[CUDA] Out of memory on device 0"
SILENT = "Health check failed: audio output silent for 8s"
UNDERFLOW = "Stream buffer underflow: expected 2048 samples, got 0"
UNICODE = "Text preprocessing failed: invalid unicode sequence at pos 17"


def stamp(t: datetime) -> str:
    return t.strftime("%Y-%m-%d %H:%M:%S") + f",{t.microsecond // 1000:03d}"


def line(t: datetime, level: str, msg: str) -> bytes:
    return f"{stamp(t)} [{level}] {msg}\n".encode()


def set_mtime(path, t: datetime) -> None:
    os.utime(path, (t.timestamp(), t.timestamp()))


@pytest.fixture
def config(logdir) -> LogsConfig:
    return LogsConfig(files=[
        LogFileConfig(name="webui", path=logdir / "webui.log", rotation="rename"),
        LogFileConfig(name="inference", path=logdir / "inference.log", rotation="size"),
        LogFileConfig(name="health", path=logdir / "health.log", rotation="none"),
    ])


def seed_incident(logdir) -> None:
    """The seed's §2.3 example, spread over the three logs and an archive, plus noise and old errors."""
    oom_at = datetime(2024, 6, 15, 14, 22, 3, 102000)
    old = NOW - timedelta(hours=3)
    # An archive from hours ago, full of errors that must not show up (and need not be read).
    with gzip.open(logdir / "inference.log.2.gz", "wb") as f:
        f.write(line(old, "ERROR", "Model load timeout > 15s") * 100)
    set_mtime(logdir / "inference.log.2.gz", old)
    # The newest archive holds the OOM: size rotation happened right after it.
    with gzip.open(logdir / "inference.log.1.gz", "wb") as f:
        f.write(line(oom_at - timedelta(minutes=20), "ERROR", UNDERFLOW))
        f.write(line(oom_at - timedelta(seconds=1), "INFO", "synthesized 12 chars"))
        f.write(line(oom_at, "ERROR", OOM))
    set_mtime(logdir / "inference.log.1.gz", oom_at)
    (logdir / "inference.log").write_bytes(
        line(oom_at + timedelta(seconds=2), "ERROR", "Traceback (most recent call last):")
        + b"  File \"tts.py\", line 3, in synth\n"
        + b"torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB\n"
        + line(oom_at + timedelta(seconds=3), "ERROR", UNDERFLOW)
    )
    (logdir / "health.log").write_bytes(
        line(old, "WARNING", SILENT)
        + line(oom_at + timedelta(milliseconds=3), "WARNING", SILENT)
    )
    (logdir / "webui.log.2024-06-14").write_bytes(line(old, "ERROR", UNICODE))
    set_mtime(logdir / "webui.log.2024-06-14", old)
    (logdir / "webui.log").write_bytes(
        line(oom_at + timedelta(seconds=1, milliseconds=109), "ERROR", UNICODE)
        + line(oom_at + timedelta(seconds=5), "INFO", "GET /health 200")
    )


def test_seed_example_names_the_oom_as_root_and_the_rest_as_derived(config, logdir):
    seed_incident(logdir)
    result = diagnose(config, 600, now=NOW)
    assert result["root_cause"]["pattern"] == "cuda_oom"
    derived = {d["pattern"]: d["count"] for d in result["derived"]}
    assert derived == {"audio_silent": 1, "invalid_unicode": 1, "torch_cuda_oom": 1, "stream_underflow": 1}
    assert result["other_causes"] == []
    patterns = [e["pattern"] for e in result["events"]]
    assert patterns[:3] == ["cuda_oom", "audio_silent", "invalid_unicode"]
    times = [e["time"] for e in result["events"]]
    assert times == sorted(times)
    assert all(e["time"] >= "2024-06-15T14:20:00" for e in result["events"])
    assert result["files_skipped"] == 2  # the old archive and the old dated file
    assert result["warnings"] == []


def test_traceback_lines_take_the_time_of_the_line_before(config, logdir):
    seed_incident(logdir)
    result = diagnose(config, 600, now=NOW)
    torch = [e for e in result["events"] if e["pattern"] == "torch_cuda_oom"]
    assert len(torch) == 1
    assert torch[0]["time"].startswith("2024-06-15T14:22:05")


def test_load_timeout_is_the_root_of_the_silence_after_it(config, logdir):
    t0 = NOW - timedelta(minutes=5)
    (logdir / "inference.log").write_bytes(line(t0, "ERROR", "Model load timeout > 15s"))
    (logdir / "health.log").write_bytes(
        b"".join(line(t0 + timedelta(seconds=10 * i), "WARNING", SILENT)
                 for i in range(1, 4))
    )
    result = diagnose(config, 600, now=NOW)
    assert result["root_cause"]["pattern"] == "model_load_timeout"
    assert result["derived"] == [
        {**result["derived"][0], "pattern": "audio_silent", "count": 3, "first_after_seconds": 10.0}
    ]


def test_silence_long_after_the_oom_is_its_own_problem(config, logdir):
    t0 = NOW - timedelta(minutes=9)
    (logdir / "inference.log").write_bytes(line(t0, "ERROR", OOM))
    (logdir / "health.log").write_bytes(
        line(t0 + timedelta(minutes=5), "WARNING", SILENT) * 2
    )
    result = diagnose(config, 600, now=NOW)
    causes = {result["root_cause"]["pattern"]} | {o["pattern"] for o in result["other_causes"]}
    assert causes == {"cuda_oom", "audio_silent"}
    assert result["derived"] == []


def test_nothing_in_the_window_is_a_quiet_verdict(config, logdir):
    (logdir / "inference.log").write_bytes(line(NOW - timedelta(hours=1), "ERROR", OOM))
    result = diagnose(config, 600, now=NOW)
    assert result["root_cause"] is None and result["events"] == []


def test_binary_search_reads_only_the_end_of_a_big_file(config, logdir):
    start = NOW - timedelta(hours=10)
    with open(logdir / "inference.log", "wb") as f:
        for i in range(200_000):  # ~10 hours, one line every 0.18 s, an OOM every 1000 lines
            t = start + timedelta(milliseconds=180 * i)
            msg = OOM if i % 1000 == 0 else f"request {i} ok"
            f.write(line(t, "ERROR" if i % 1000 == 0 else "INFO", msg))
    size = (logdir / "inference.log").stat().st_size
    result = diagnose(config, 600, now=NOW)
    expected = sum(1 for i in range(0, 200_000, 1000)
                   if start + timedelta(milliseconds=180 * i) >= NOW - timedelta(seconds=600))
    assert result["event_count"] == expected > 0
    assert result["bytes_read"] < size / 20


def test_damaged_archive_is_a_warning_and_its_good_part_is_used(config, logdir):
    t0 = NOW - timedelta(minutes=2)
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb") as f:
        f.write(line(t0, "ERROR", OOM))
        f.write(os.urandom(300_000))  # incompressible, so the cut below lands after the first line
    (logdir / "inference.log.1.gz").write_bytes(buf.getvalue()[:200_000])
    (logdir / "inference.log.2.gz").write_bytes(b"this is not gzip at all")
    result = diagnose(config, 600, now=NOW)
    assert [e["pattern"] for e in result["events"]] == ["cuda_oom"]
    assert len(result["warnings"]) >= 2
    assert any("inference.log.2.gz" in w for w in result["warnings"])


def test_cli_prints_lines_then_verdict_and_json(config, logdir, tmp_path):
    seed_incident(logdir)
    cfg = tmp_path / "sentinel.yml"
    cfg.write_text(
        "exporter:\n  logs:\n    files:\n"
        + "".join(f"      - {{name: {n}, path: {logdir / (n + '.log')}}}\n"
                  for n in ("webui", "inference", "health"))
    )
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        rc = main(["triage", "--since", "10m", "--config", str(cfg), "--now", NOW.isoformat()])
    assert rc == 1
    text = out.getvalue()
    assert text.index("[CUDA] Out of memory") < text.index("ROOT CAUSE: cuda_oom")
    assert "DERIVED" in text
    out = io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        rc = main(["triage", "--since", "10m", "--json", "--config", str(cfg), "--now", NOW.isoformat()])
    doc = json.loads(out.getvalue())
    assert doc["root_cause"]["pattern"] == "cuda_oom"
    with redirect_stdout(io.StringIO()), redirect_stderr(err):
        assert main(["triage", "--since", "ten minutes", "--config", str(cfg)]) == 2
    assert "90s, 10m" in err.getvalue()


def test_durations():
    assert parse_duration("10m") == 600
    assert parse_duration("1h30m") == 5400
    assert parse_duration("90s") == 90
    assert parse_duration("5") == 300
    with pytest.raises(ValueError):
        parse_duration("10 minutes")


def test_command_history_is_triaged_with_zoned_timestamps(config, tmp_path):
    """vLLM-Omni logs to stdout: triage reads `journalctl --since ...` / `docker logs --since ...` output."""
    import sys

    from tts_sentinel.loghistory.config import LogCommandConfig

    def utc(t: datetime) -> str:  # how docker --timestamps prints: UTC, nine fraction digits
        return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f") + "123Z"

    oom_at = NOW - timedelta(minutes=3)
    printed = [
        f"{utc(NOW - timedelta(hours=2))} torch.OutOfMemoryError: CUDA out of memory (too old)",
        # how journalctl -o short-iso-precise prints, from a host two hours east
        f"{oom_at.astimezone(timezone(timedelta(hours=2))).isoformat(timespec='microseconds')} "
        "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB",
        f"{utc(oom_at + timedelta(seconds=4))} vllm.v1.engine.exceptions.EngineDeadError: EngineCore died",
    ]
    script = "import sys\nprint('since=' + sys.argv[1])\n" + "".join(f"print({line!r})\n" for line in printed)
    command = LogCommandConfig(name="vllm", argv=["true"],
                               history_argv=[sys.executable, "-c", script, "{since_seconds}"])
    cfg = config.model_copy(update={"commands": [command]})
    result = diagnose(cfg, 600, now=NOW)
    assert [(e["log"], e["pattern"]) for e in result["events"]] == [("vllm", "torch_cuda_oom"), ("vllm", "engine_dead")]
    assert result["events"][0]["time"] == oom_at.isoformat(timespec="milliseconds")
    assert result["root_cause"]["pattern"] == "torch_cuda_oom"
    assert [d["pattern"] for d in result["derived"]] == ["engine_dead"]


def test_history_command_that_fails_is_a_warning(config, tmp_path):
    from tts_sentinel.loghistory.config import LogCommandConfig

    missing = LogCommandConfig(name="vllm", argv=["true"], history_argv=[str(tmp_path / "no-journalctl")])
    failing = LogCommandConfig(name="dock", argv=["true"], history_argv=["false"])
    result = diagnose(config.model_copy(update={"commands": [missing, failing]}), 600, now=NOW)
    assert any("cannot run" in w for w in result["warnings"])
    assert any("exited with status 1" in w for w in result["warnings"])


def test_history_command_past_its_timeout_is_killed_with_its_children(config):
    """A grandchild holding stdout open would keep the read waiting: the deadline kills the whole group."""
    import sys
    import time

    from tts_sentinel.loghistory.config import LogCommandConfig

    script = (
        "import subprocess, sys, time\n"
        f"print({line(NOW - timedelta(minutes=1), 'ERROR', OOM).decode().rstrip()!r}, flush=True)\n"
        "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
        "time.sleep(60)\n"
    )
    hung = LogCommandConfig(name="vllm", argv=["true"], history_argv=[sys.executable, "-c", script],
                            history_timeout_seconds=1.0)
    started = time.monotonic()
    result = diagnose(config.model_copy(update={"commands": [hung]}), 600, now=NOW)
    assert time.monotonic() - started < 30
    assert any("history command" in w and "timed out" in w for w in result["warnings"])
    assert [(e["log"], e["pattern"]) for e in result["events"]] == [("vllm", "cuda_oom")]


def test_long_stretch_without_timestamps_is_read_not_skipped(config, logdir):
    t0 = NOW - timedelta(minutes=1)
    (logdir / "inference.log").write_bytes(
        line(NOW - timedelta(hours=5), "INFO", "start")
        + b"  traceback frame without a timestamp\n" * 200_000  # ~7 MB, several lookahead windows
        + line(t0, "ERROR", OOM)
    )
    result = diagnose(config, 600, now=NOW)
    assert [e["pattern"] for e in result["events"]] == ["cuda_oom"]
