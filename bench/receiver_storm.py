"""Webhook storm against a real `tts-sentinel receiver` process on loopback.

Thousands of Alertmanager v4 posts, concurrently: every incident is sent several times
(repeat_interval re-sends) by two "HA peers" at the same instant, and some incidents come as a
group of two alerts (light + medium) that must make ONE medium action. Each action runs the
command actuator, which appends the incident id to a file: the bench proves exactly one real
action per incident from that file and from the journal.

Peers compared in the same run: answer times of first sends (a job is persisted, fsync'd)
vs duplicates (a key lookup) vs GET /metrics (no journal at all). Prints p50/p99 and ratios;
asserts nothing but the exactly-once count.

Run: .venv/bin/python bench/receiver_storm.py [incidents] [sends_per_incident] [concurrency]
"""

from __future__ import annotations

import asyncio
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import httpx
import yaml

from tts_sentinel.harness.stack import free_port

TOKEN = "bench-token-0123456789abcdef"


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def process_cpu_seconds(pid: int) -> float:
    """user + system CPU seconds of a process (Linux /proc), 0 elsewhere."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def make_alert(incident: int, name: str, tier: str) -> dict:
    return {
        "status": "firing",
        "labels": {
            "alertname": name,
            "tier": tier,
            "severity": "critical",
            "service": f"svc-{incident}",
            "incident": f"i{incident}",
        },
        "annotations": {"summary": f"{name} on svc-{incident}"},
        "startsAt": "2026-11-23T10:00:00Z",
        "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "http://prometheus/graph",
        "fingerprint": f"{incident:08x}{name[:8].encode().hex()}"[:16],
    }


def make_payload(incident: int) -> dict:
    alerts = [make_alert(incident, "TtsHealthProbeFailing", "light")]
    if incident % 4 == 0:  # an OOM and the L1 failure it caused: one medium action, not two
        alerts.append(make_alert(incident, "TtsCudaOom", "medium"))
    return {
        "version": "4",
        "groupKey": f'{{}}:{{service="svc-{incident}"}}',
        "truncatedAlerts": 0,
        "status": "firing",
        "receiver": "tts-sentinel",
        "groupLabels": {"service": f"svc-{incident}"},
        "commonLabels": {},
        "commonAnnotations": {},
        "externalURL": "http://am",
        "alerts": alerts,
    }


def write_config(workdir: Path, incidents: int, port: int, actions_file: Path) -> Path:
    record = [
        sys.executable,
        "-S",
        "-c",  # -S: no site import, a cheaper process per action
        f"import os; open({str(actions_file)!r}, 'a').write(os.environ['TTS_LABEL_INCIDENT'] + '\\n')",
    ]
    targets = [
        {
            "name": f"svc-{i}",
            "match": {"service": f"svc-{i}"},
            "actuator": "command",
            "command": {"restart": record, "stop": record, "start": record, "label_env": ["incident"]},
            "cache_dir": None,
            "weights_dir": None,
            "service_config": None,
            "git_dir": None,
        }
        for i in range(incidents)
    ]
    single = [{"action": "restart", "component": "web"}]
    config = {
        "receiver": {
            "listen_port": port,
            "journal_path": str(workdir / "journal.sqlite3"),
            "alertmanager_url": None,
            "targets": targets,
            "tiers": {"light": single, "medium": single},
            "guards": {"cooldown_seconds": {}, "budget_actions": 1000},
        }
    }
    path = workdir / "sentinel.yml"
    path.write_text(yaml.safe_dump(config))
    return path


async def storm(url: str, incidents: int, sends: int, concurrency: int) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {"first": [], "duplicate": [], "metrics": []}
    codes: Counter[int] = Counter()
    # Each "send" of an incident is a pair posted at once by two HA peers.
    rounds = [(i, r) for i in range(incidents) for r in range(sends // 2)]
    random.Random(7).shuffle(rounds)
    seen: set[int] = set()
    gate = asyncio.Semaphore(concurrency)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(
        base_url=url, timeout=60, limits=limits, headers={"Authorization": f"Bearer {TOKEN}"}
    ) as client:

        async def post(incident: int) -> None:
            body = make_payload(incident)
            async with gate:
                t0 = time.perf_counter()
                resp = await client.post("/alerts", json=body)
                dt = time.perf_counter() - t0
            codes[resp.status_code] += 1
            new = resp.status_code == 202 and resp.json()["new_jobs"]
            times["first" if new else "duplicate"].append(dt)

        async def scrape() -> None:
            async with gate:
                t0 = time.perf_counter()
                await client.get("/metrics")
                times["metrics"].append(time.perf_counter() - t0)

        tasks = []
        for incident, _ in rounds:
            tasks.append(post(incident))
            tasks.append(post(incident))  # the HA peer's copy
            if incident not in seen:
                seen.add(incident)
                tasks.append(scrape())
        t0 = time.perf_counter()
        await asyncio.gather(*tasks)
        times["wall"] = [time.perf_counter() - t0]
    times["codes"] = [float(c) for c in sorted(codes.elements())]
    return times


def main() -> int:
    incidents = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    sends = int(sys.argv[2]) if len(sys.argv) > 2 else 10
    concurrency = int(sys.argv[3]) if len(sys.argv) > 3 else 64
    workdir = Path(tempfile.mkdtemp(prefix="receiver-storm-"))
    actions_file = workdir / "actions.log"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    config = write_config(workdir, incidents, port, actions_file)
    token = workdir / "token"
    token.write_text(TOKEN)
    log = (workdir / "receiver.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "tts_sentinel.cli", "receiver", "--config", str(config), "--token-file", str(token)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or proc.poll() is not None:
                print("receiver did not start; see", workdir / "receiver.log")
                return 1
            time.sleep(0.2)
        auth = {"Authorization": f"Bearer {TOKEN}"}
        cpu0 = process_cpu_seconds(proc.pid)
        result = asyncio.run(storm(url, incidents, sends, concurrency))
        server_cpu = process_cpu_seconds(proc.pid) - cpu0
        # Wait for the workers to finish every job.
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            jobs = httpx.get(url + "/actions", params={"limit": 10_000}, headers=auth).json()
            if len(jobs) >= incidents and all(j["status"] not in ("queued", "running") for j in jobs):
                break
            time.sleep(0.5)
        jobs = httpx.get(url + "/actions", params={"limit": 10_000}, headers=auth).json()
    finally:
        proc.terminate()
        proc.wait(20)
        log.close()

    posts = len(result["first"]) + len(result["duplicate"])
    codes = Counter(int(c) for c in result["codes"])
    ran = Counter(actions_file.read_text().split()) if actions_file.exists() else Counter()
    statuses = Counter(j["status"] for j in jobs)
    tiers = Counter(j["tier"] for j in jobs)
    once = len(ran) == incidents and set(ran.values()) == {1}
    ms = 1000.0
    print(f"machine: {platform.node()} {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}")
    print(
        f"storm: {incidents} incidents x {sends} sends (HA pairs) = {posts} posts, concurrency {concurrency}, "
        f"wall {result['wall'][0]:.2f}s = {posts / result['wall'][0]:.0f} posts/s; answers {dict(codes)}"
    )
    for kind in ("first", "duplicate", "metrics"):
        v = result[kind]
        print(f"  {kind:9s} n={len(v):5d}  p50 {statistics.median(v) * ms:7.2f} ms  p99 {pct(v, 0.99) * ms:7.2f} ms")
    print(
        f"  receiver CPU during the storm: {server_cpu:.2f}s = {server_cpu / posts * ms:.2f} ms per post "
        "(uvicorn + FastAPI + validation + SQLite; actions run in child processes)"
    )
    base = statistics.median(result["metrics"])
    print(
        f"  ratio p50 first/metrics {statistics.median(result['first']) / base:.2f}, "
        f"duplicate/metrics {statistics.median(result['duplicate']) / base:.2f}"
    )
    print(
        f"journal: {len(jobs)} jobs {dict(statuses)}, tiers {dict(tiers)}, "
        f"duplicates absorbed {sum(j['duplicates'] for j in jobs)}"
    )
    print(
        f"actions run (command actuator side effect): {sum(ran.values())} for {len(ran)} incidents; "
        f"exactly one per incident: {'YES' if once else 'NO'}"
    )
    return 0 if once else 1


if __name__ == "__main__":
    sys.exit(main())
