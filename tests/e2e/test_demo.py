"""`tts-sentinel demo` starts the stack, prints its URLs, and Ctrl-C leaves no process behind."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from support import require_binary

pytestmark = pytest.mark.e2e


def processes_mentioning(text: str) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if text in cmdline:
                pids.append(int(entry.name))
    return pids


def opens(url: str, within: float = 30.0) -> bool:
    """The link answers 200 (or 401 for the receiver's journal) within a bounded time (loaded CI machines)."""
    deadline = time.monotonic() + within
    while True:
        try:
            if httpx.get(url, timeout=10).status_code in (200, 401):
                return True
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            return False
        time.sleep(0.5)


def engine_scraped(prometheus: str, login: tuple[str, str]) -> bool:
    """The demo's Prometheus scrapes the engine's own /metrics and has its vLLM-Omni audio families."""
    answer = httpx.get(prometheus + "/api/v1/query", timeout=10, auth=login, params={
        "query": 'count by (__name__) ({job="vllm-omni", __name__=~"vllm_omni:audio_rtf_count|vllm:kv_cache_usage_perc"})'
    }).json()
    return len(answer["data"]["result"]) == 2


@pytest.mark.parametrize("mode", ["seed", "vllm-omni"])
def test_demo_prints_urls_and_ctrl_c_stops_everything(tmp_path, mode):
    require_binary("prometheus")
    require_binary("prometheus-alertmanager", "alertmanager")
    workdir = tmp_path / "demo"
    flags = ["--vllm-omni"] if mode == "vllm-omni" else []
    proc = subprocess.Popen([sys.executable, "-m", "tts_sentinel.cli", "demo", "--dir", str(workdir), *flags],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines = []
    deadline = time.monotonic() + 90
    try:
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if "stop:" in line:
                break
        output = "".join(lines)
        assert "inject a fault:" in output, output
        assert "/metrics" in output and "/alerts" in output
        # every link the banner prints opens (the receiver's journal wants its token: 401, not 404)
        pages = "\n".join(line for line in output.splitlines() if "POST" not in line)
        for url in re.findall(r"http://127\.0\.0\.1:\d+\S*", pages):
            assert opens(url), url
        # Prometheus and Alertmanager ask for the login the banner names, from a 0600 file
        user, password_file = re.search(r"user (\S+), password in (\S+)\)", output).groups()
        assert Path(password_file).stat().st_mode & 0o777 == 0o600
        login = (user, Path(password_file).read_text().strip())
        for part in ("Prometheus", "Alertmanager"):
            url = re.search(rf"{part}\s+(http://\S+)", output).group(1)
            assert httpx.get(url, timeout=10).status_code == 401, url
            assert httpx.get(url, timeout=10, auth=login, follow_redirects=True).status_code == 200, url
        if mode == "vllm-omni":  # the engine's API and its own /metrics, scraped for the dashboard's vLLM-Omni row
            assert "POST http://127.0.0.1:" in output and "/v1/audio/speech" in output and "engine metrics" in output
            prometheus = re.search(r"Prometheus\s+(http://127\.0\.0\.1:\d+)", output).group(1)
            deadline = time.monotonic() + 60
            while not engine_scraped(prometheus, login):
                assert time.monotonic() < deadline, "the demo's Prometheus never scraped the engine"
                time.sleep(1)
        else:
            assert "engine metrics" not in output and "/tts" in output
        # the one line that points another terminal at the demo's config works
        config = re.search(r"export TTS_SENTINEL_CONFIG=(\S+)", output).group(1)
        env = {**os.environ, "TTS_SENTINEL_CONFIG": config}
        actions = subprocess.run([sys.executable, "-m", "tts_sentinel.cli", "actions"], env=env,
                                 capture_output=True, text=True, timeout=60)
        assert actions.returncode == 0, actions.stderr
        assert processes_mentioning(str(workdir)), "the demo started nothing"
        proc.send_signal(signal.SIGINT)
        rest, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:  # an assertion failed: stop the demo the way a user does, so it stops its stack
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
    assert proc.returncode == 0, output + rest
    assert "demo stopped." in rest
    time.sleep(0.5)
    assert processes_mentioning(str(workdir)) == []
