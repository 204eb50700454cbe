"""An `NVRM: Xid ... 79` kernel line on the real loop: the exporter's kernel log source counts it,
Prometheus fires TtsGpuXidFatal, Alertmanager pages on-call, and the receiver only journals it
(tier none): nothing is restarted for a GPU that fell off the bus.

The kernel log is a file here (the stack's exporter follows `logs/kern.log`); NVML is the real
binding, so on a host without a driver the XID is labelled by its PCI address, not an index.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from support import started_stack, wait_for

from tts_sentinel.harness.drill import StackEndpoints, firing_alerts, journal
from tts_sentinel.harness.stack import Stack

pytestmark = pytest.mark.e2e

FALLEN_OFF = "kernel: NVRM: Xid (PCI:0000:3b:00): 79, pid=2211, name=python3, GPU has fallen off the bus.\n"


class KernelLogStack(Stack):
    """The test stack with the GPU collector on and the kernel log read from a file."""

    @property
    def kern_log(self):
        return self.log_dir / "kern.log"

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

    def fatal() -> list[dict]:
        return [a for a in firing_alerts(endpoints.prometheus, endpoints.auth)
                if a["labels"]["alertname"] == "TtsGpuXidFatal" and a["labels"]["xid"] == "79"]

    alert = wait_for(fatal, 60, "TtsGpuXidFatal for XID 79")[0]
    assert (alert["labels"]["tier"], alert["labels"]["severity"]) == ("none", "critical")

    def paged() -> list[dict]:
        return [p for p in stack.oncall.pages[before:] if p.get("status") == "firing"
                and any(a["labels"]["alertname"] == "TtsGpuXidFatal" for a in p["alerts"])]

    page = wait_for(paged, 30, "on-call to be paged")[0]
    sent = next(a for a in page["alerts"] if a["labels"]["alertname"] == "TtsGpuXidFatal")
    assert sent["labels"]["xid"] == "79" and "79 fallen off the bus" in sent["annotations"]["description"]

    def journaled() -> list[dict]:
        return [row for row in journal(endpoints.receiver, endpoints.token)
                if any(a.get("alertname") == "TtsGpuXidFatal" for a in row.get("alerts") or [])]

    # journal only: a job of tier none with no step, whatever else the stack's start-up healed
    rows = wait_for(journaled, 30, "the receiver to journal the alert")
    assert {row["tier"] for row in rows} == {"none"}, json.dumps(rows, indent=1)
    assert all(row["steps"] == [] for row in rows), json.dumps(rows, indent=1)
