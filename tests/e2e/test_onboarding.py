"""Done-when of onboarding, for real: a simulator in vLLM-Omni mode under supervisord, watched by the
loopback stack. `init` → `check-config` passes → `doctor` all ✔; a removed log file or a stopped
receiver → `doctor` names it and exits non-zero.
"""

from __future__ import annotations

import io
import json
import os
import signal
import time
from contextlib import redirect_stderr, redirect_stdout
from typing import Any

import httpx
import pytest
from support import require_binary

from tts_sentinel.cli import main
from tts_sentinel.harness.stack import INFERENCE_PROGRAM, WEB_PROGRAM, Stack

pytestmark = pytest.mark.e2e


class VllmOmniStack(Stack):
    """The demo stack with the stand-in serving vLLM-Omni's API on its inference port."""

    def sentinel_config(self) -> dict[str, Any]:
        config = super().sentinel_config()
        config["simulator"]["protocol"] = "openai"
        probes = config["exporter"]["probes"]
        probes["health"].update(url=self.url("api", "/health"), expect_json=None, expect_empty_body=True)
        probes["synthesis"]["request"] = {"protocol": "openai", "url": self.url("api", "/v1/audio/speech"),
                                          "timeout_seconds": 10.0}
        return config


def cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        rc = main(list(argv))
    return rc, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    require_binary("prometheus")
    require_binary("prometheus-alertmanager", "alertmanager")
    s = VllmOmniStack(tmp_path_factory.mktemp("onboarding"))
    s.start()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # doctor asks Prometheus about targets: let it scrape once
        targets = httpx.get(s.url("prometheus", "/api/v1/targets"), auth=s.web.auth()).json()["data"]["activeTargets"]
        if len(targets) == 2 and all(t["health"] == "up" for t in targets):
            break
        time.sleep(0.5)
    yield s
    s.stop()


def test_init_then_check_config_then_doctor_all_green_then_doctor_names_what_broke(stack, tmp_path):
    config = tmp_path / "tts-sentinel.yml"
    rc, out, err = cli(
        "init", stack.url("api"), "--manager", "supervisord",
        "--supervisord-url", stack.url("supervisord", "/RPC2"),
        "--web-unit", WEB_PROGRAM, "--inference-unit", INFERENCE_PROGRAM,
        "--log-dir", str(stack.log_dir), "--out", str(config), "--state-dir", str(tmp_path / "state"),
        "--token-file", str(stack.dir / "receiver.token"),
        "--exporter-port", str(stack.ports.exporter), "--receiver-port", str(stack.ports.receiver),
        "--alertmanager-url", stack.url("alertmanager"),
        "--alertmanager-username", stack.web.username, "--alertmanager-password-file", str(stack.web.password_file),
    )
    assert rc == 0, err
    assert "detected openai" in out
    assert cli("check-config", str(config))[0] == 0

    doctor = ("doctor", "--config", str(config), "--prometheus", stack.url("prometheus"),
              "--prometheus-username", stack.web.username, "--prometheus-password-file", str(stack.web.password_file))
    rc, table, _ = cli(*doctor)
    print(table)  # the report quotes it
    assert rc == 0, table
    assert "✗" not in table
    for line in ("✔ log file inference", "✔ probe health", "✔ probe synthesis", "✔ receiver",
                 f"✔ target qwen3-tts: supervisord {INFERENCE_PROGRAM}", "✔ Prometheus rules",
                 "✔ Prometheus scrapes the exporter", "✔ Alertmanager routes tiers",
                 "✔ Prometheus asks for a login", "✔ Alertmanager asks for a login"):
        assert line in table

    (stack.log_dir / "webui.log").unlink()
    rc, out, _ = cli(*doctor, "--json")
    assert rc == 1
    failed = [c for c in json.loads(out)["checks"] if c["status"] == "fail"]
    assert [c["what"] for c in failed] == ["log file webui"]
    assert "no such file" in failed[0]["why"] and failed[0]["fix"]

    (stack.log_dir / "webui.log").touch()  # the log is back: the next ✗ can only be about the receiver
    receiver = stack._procs["receiver"]  # stop the receiver only, as a crash would
    os.killpg(receiver.pid, signal.SIGTERM)
    receiver.wait(10)
    rc, table, _ = cli(*doctor)
    print(table)
    assert rc == 1
    assert "✗ receiver" in table and "not running at" in table
    failed_lines = [line for line in table.splitlines() if line.startswith("✗")]
    assert all("receiver" in line for line in failed_lines), "only the stopped receiver (and its scrape) fail"
