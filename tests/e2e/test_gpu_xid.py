"""GPU faults the engine cannot report, on the real loop: an `NVRM: Xid ... 79` kernel line (the
exporter's kernel log source) and an XID 48 event from NVML's event wait each make Prometheus fire
TtsGpuXidFatal, Alertmanager page on-call, and the receiver only journal it (tier none): nothing is
restarted for a GPU that fell off the bus or hit a double-bit ECC error.

The kernel log is a file here (the stack's exporter follows `logs/kern.log`). NVML is FakeNvml
(one GPU at PCI 0000:3b:00), run inside the exporter by fake_nvml_exporter.py; the test plays the
driver's events to it through a control file. One stack serves both cases.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from support import started_stack, wait_for

from tts_sentinel.harness.drill import StackEndpoints, firing_alerts, journal
from tts_sentinel.harness.stack import Stack

pytestmark = pytest.mark.e2e

WRAPPER = Path(__file__).with_name("fake_nvml_exporter.py")
FALLEN_OFF = "kernel: NVRM: Xid (PCI:0000:3b:00): 79, pid=2211, name=python3, GPU has fallen off the bus.\n"


class KernelLogStack(Stack):
    """The test stack with the GPU collector on (over FakeNvml) and the kernel log read from a file."""

    @property
    def kern_log(self):
        return self.log_dir / "kern.log"

    @property
    def nvml_control(self):
        """JSON lines the exporter's FakeNvml plays as driver events (see fake_nvml_exporter.py)."""
        return self.dir / "run" / "nvml-control.jsonl"

    def _spawn(self, name: str, argv: list[str]) -> None:
        if name == "exporter":  # `python -m tts_sentinel.cli exporter ...` with FakeNvml in place of pynvml
            argv = [sys.executable, str(WRAPPER), str(self.nvml_control), *argv[3:]]
        super()._spawn(name, argv)

    def sentinel_config(self) -> dict[str, Any]:
        config = super().sentinel_config()
        config["exporter"]["gpu"] = {"enabled": True, "xid": {
            "kernel_log": {"path": str(self.kern_log), "poll_interval_seconds": 0.2}}}
        return config

    def write_configs(self) -> None:
        super().write_configs()
        self.kern_log.write_text("kernel: NVRM: loading NVIDIA UNIX x86_64 Kernel Module  535.104.05\n")


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    yield from started_stack(KernelLogStack, tmp_path_factory.mktemp("gpu-xid"))


def query(stack, expr: str) -> list[dict]:
    return httpx.get(stack.url("prometheus", "/api/v1/query"), params={"query": expr}, timeout=5, auth=stack.web.auth()).json()["data"]["result"]


def test_an_xid_79_kernel_line_pages_and_restarts_nothing(stack):
    endpoints = StackEndpoints.from_dir(stack.dir)
    wait_for(lambda: query(stack, 'tts_gpu_xid_source_up{source="kernel_log"} == 1'), 60,
             "Prometheus to see the exporter read the kernel log")
    before = len(stack.oncall.pages)

    with stack.kern_log.open("a") as f:
        f.write(FALLEN_OFF)

    alert = wait_for(lambda: fatal(endpoints, "79"), 60, "TtsGpuXidFatal for XID 79")[0]
    assert (alert["labels"]["tier"], alert["labels"]["severity"]) == ("none", "critical")
    # the kernel line's PCI address is the fake GPU's: the XID is put on GPU 0, from the kernel log
    assert alert["labels"]["gpu"] == "0"
    assert query(stack, 'tts_gpu_xid_errors_total{xid="79",source="kernel_log"} == 1')

    sent = wait_for(lambda: paged(stack, before, "79"), 30, "on-call to be paged")[0]
    assert "79 fallen off the bus" in sent["annotations"]["description"]
    assert_journal_only(endpoints)


def test_an_xid_48_nvml_event_pages_and_restarts_nothing(stack):
    endpoints = StackEndpoints.from_dir(stack.dir)
    wait_for(lambda: query(stack, 'tts_gpu_xid_source_up{source="nvml"} == 1'), 60,
             "Prometheus to see the exporter wait on NVML events")
    before = len(stack.oncall.pages)

    with stack.nvml_control.open("a") as f:  # the driver reports a double-bit ECC error on GPU 0
        f.write(json.dumps({"xid": [0, 48]}) + "\n")

    alert = wait_for(lambda: fatal(endpoints, "48"), 60, "TtsGpuXidFatal for XID 48")[0]
    assert (alert["labels"]["tier"], alert["labels"]["severity"], alert["labels"]["gpu"]) == ("none", "critical", "0")
    assert query(stack, 'tts_gpu_xid_errors_total{xid="48",source="nvml"} == 1')

    sent = wait_for(lambda: paged(stack, before, "48"), 30, "on-call to be paged")[0]
    assert "reported XID 48" in sent["annotations"]["summary"]
    assert_journal_only(endpoints)


def fatal(endpoints: StackEndpoints, xid: str) -> list[dict]:
    return [a for a in firing_alerts(endpoints.prometheus, endpoints.auth)
            if a["labels"]["alertname"] == "TtsGpuXidFatal" and a["labels"]["xid"] == xid]


def paged(stack, before: int, xid: str) -> list[dict]:
    """The TtsGpuXidFatal alerts for `xid` in firing pages on-call got since `before`."""
    return [a for p in stack.oncall.pages[before:] if p.get("status") == "firing" for a in p["alerts"]
            if a["labels"]["alertname"] == "TtsGpuXidFatal" and a["labels"].get("xid") == xid]


def assert_journal_only(endpoints: StackEndpoints) -> None:

    def journaled() -> list[dict]:
        return [row for row in journal(endpoints.receiver, endpoints.token)
                if any(a.get("alertname") == "TtsGpuXidFatal" for a in row.get("alerts") or [])]

    # journal only: a job of tier none with no step, whatever else the stack's start-up healed
    rows = wait_for(journaled, 30, "the receiver to journal the alert")
    assert {row["tier"] for row in rows} == {"none"}, json.dumps(rows, indent=1)
    assert all(row["steps"] == [] for row in rows), json.dumps(rows, indent=1)
