"""Webhook storm against a real `tts-sentinel receiver` process on loopback, and a peer.

Thousands of Alertmanager v4 posts, concurrently: every incident is sent several times
(repeat_interval re-sends) by two "HA peers" at the same instant, and one service in four gets a
second fault of another family in the same group (a CUDA OOM next to the health probe failure):
two incidents, two actions. Each action runs the command actuator, which appends the incident's
service and alert to a file (a /bin/sh one-liner): the bench proves exactly one real action per incident from that file,
from the journal (jobs == incidents) and from GET /incidents.

The posts come from bench/loadgen.py (several processes, keep-alive HTTP/1.1, bodies encoded
before the clock starts), in two runs, each against a fresh receiver:
- closed loop, 64 connections: the throughput ceiling (posts/s);
- open loop at 800 posts/s (the goal's rate): each post is due at its time whether or not earlier
  ones were answered, and its latency counts from then (no coordinated omission): the p99.

Peers in the same run: a server answering a canned 200 without parsing (the load generator's own
ceiling on this machine), a minimal stdlib webhook handler (prometheus-am-executor style: parse the
JSON, answer 200, persist nothing) under the same storms; and, inside the receiver, first sends (a
job persisted, fsync'd) vs duplicates (a key lookup) vs GET /metrics (no journal; one incident in
ten brings a scrape). Prints posts/s, p50/p99 and ratios; the exit code says whether exactly-once
held in both runs.

The receiver's own limits are set explicitly for the bench (token required as always; the per-client
rate limit raised above the storm's rate, the body and alert limits left at their defaults).

Run: .venv/bin/python bench/receiver_storm.py [incidents] [sends_per_incident] [concurrency] [processes] [rate]
"""

from __future__ import annotations

import json
import os
import platform
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import httpx
import yaml

from tts_sentinel.harness.procstat import child_pids, cpu_seconds, resident_bytes
from tts_sentinel.harness.stack import free_port
from tts_sentinel.receiver.child import role_of

sys.path.insert(0, str(Path(__file__).resolve().parent))
import loadgen  # noqa: E402  (bench/loadgen.py, next to this file)

TOKEN = "bench-token-0123456789abcdef"
SCRAPE_EVERY = 10  # a GET /metrics with the first pair of one incident in ten (a comparison without journal)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def loop_thread_cpu_seconds(pid: int) -> float:
    """user + system CPU seconds of a process's main thread (the receiver's event loop), 0 elsewhere."""
    try:
        return cpu_seconds(pid, thread=pid)
    except OSError:
        return 0.0


def process_cpu_seconds(pid: int, children: bool = False) -> float:
    """user + system CPU seconds of a process (Linux /proc), with its waited-for children's when
    `children`; 0 elsewhere."""
    try:
        return cpu_seconds(pid, children=children)
    except OSError:
        return 0.0


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
    if incident % 4 == 0:  # a GPU-memory fault next to the web front's: another family, another incident
        alerts.append(make_alert(incident, "TtsCudaOutOfMemory", "medium"))
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
    # The action appends "service/alertname" to a file. A POSIX shell reads the two allowlisted
    # labels from the environment (quoted, never parsed as code): a Python process per action would
    # cost ~25 ms of CPU each and the bench would measure interpreter start-ups, not the receiver.
    record = ["/bin/sh", "-c", 'printf "%s/%s\\n" "$TTS_LABEL_INCIDENT" "$TTS_LABEL_ALERTNAME" >> "$0"',
              str(actions_file)]
    targets = [
        {
            "name": f"svc-{i}",
            "match": {"service": f"svc-{i}"},
            "actuator": "command",
            "command": {"restart": record, "stop": record, "start": record, "label_env": ["incident", "alertname"]},
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
            # Explicit for the bench: one client posts the whole storm (Alertmanager peers are few).
            "rate_limit": {"requests_per_second": 100_000, "burst": 100_000},
        }
    }
    path = workdir / "sentinel.yml"
    path.write_text(yaml.safe_dump(config))
    return path


PEER = r"""
import hmac, json, sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
TOKEN = sys.argv[2].encode()
class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a):
        pass
    def do_POST(self):
        given = self.headers.get("Authorization", "").partition(" ")[2].encode()
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        ok = hmac.compare_digest(given, TOKEN) and (not body or json.loads(body).get("version") == "4")
        out = b'{"accepted":true}' if ok else b'{"error":"no"}'
        self.send_response(200 if ok else 400)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)
    do_GET = do_POST
ThreadingHTTPServer.daemon_threads = True
ThreadingHTTPServer.request_queue_size = 1024
ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
"""


def storm(port: int, incidents: int, sends: int, concurrency: int, processes: int, rate: float | None = None,
          scrape: bool = True) -> dict[str, list[float]]:
    """Post the storm with the load generator; latencies by kind, the wall time and the answer codes."""
    host = f"127.0.0.1:{port}"
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    posts = [loadgen.encode("POST", "/alerts", host, headers, json.dumps(make_payload(i)).encode())
             for i in range(incidents)]
    metrics = loadgen.encode("GET", "/metrics", host, {})
    # Each "send" of an incident is a pair posted at once by two HA peers; the first pair of an
    # incident in SCRAPE_EVERY comes with a Prometheus scrape (a request that touches no journal).
    rounds = [(i, r) for i in range(incidents) for r in range(sends // 2)]
    random.Random(7).shuffle(rounds)
    seen: set[int] = set()
    groups: list[list[bytes]] = []
    for incident, _ in rounds:
        group = [posts[incident], posts[incident]]
        if scrape and incident % SCRAPE_EVERY == 0 and incident not in seen:
            seen.add(incident)
            group.append(metrics)
        groups.append(group)
    is_metrics = [request is metrics for group in groups for request in group]
    answers, wall = loadgen.blast("127.0.0.1", port, groups, connections=concurrency, processes=processes,
                                  rate=rate)
    times: dict[str, list[float]] = {"first": [], "duplicate": [], "metrics": [], "all": []}
    codes: Counter[int] = Counter()
    for index, status, seconds, body in answers:
        if status == 0:  # a keep-alive connection the server closed as it was reused: resent
            codes[0] += 1
            continue
        if is_metrics[index]:
            times["metrics"].append(seconds)
            continue
        codes[status] += 1
        times["all"].append(seconds)
        if scrape:
            new = status == 202 and json.loads(body)["new_jobs"]
            times["first" if new else "duplicate"].append(seconds)
    times["wall"] = [wall]
    times["codes"] = [float(c) for c in sorted(codes.elements())]
    return times


def wait_up(url: str, proc: subprocess.Popen, path: str) -> bool:
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(url + path, timeout=1, headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200:
                return True
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline or proc.poll() is not None:
            return False
        time.sleep(0.2)


NULL = r"""
import asyncio, sys
OK = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 17\r\n\r\n{\"accepted\":true}"
class Null(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport, self.buf = transport, b""
    def data_received(self, data):
        self.buf += data
        while True:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            length = 0
            for line in self.buf[:end].split(b"\r\n")[1:]:
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            if len(self.buf) < end + 4 + length:
                return
            self.buf = self.buf[end + 4 + length:]
            self.transport.write(OK)
async def main():
    server = await asyncio.get_running_loop().create_server(Null, "127.0.0.1", int(sys.argv[1]), backlog=1024)
    await server.serve_forever()
try:
    import uvloop
    uvloop.run(main())
except ImportError:
    asyncio.run(main())
"""


def run_server(script: str, incidents: int, sends: int, concurrency: int, processes: int,
               rate: float | None) -> dict[str, list[float]] | None:
    """The storm against a comparison server (a Python script taking port and token)."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-c", script, str(port), TOKEN])
    try:
        if not wait_up(f"http://127.0.0.1:{port}", proc, "/"):
            return None
        cpu0 = process_cpu_seconds(proc.pid)
        result = storm(port, incidents, sends, concurrency, processes, rate, scrape=False)
        result["cpu"] = [process_cpu_seconds(proc.pid) - cpu0]
        return result
    finally:
        proc.terminate()
        proc.wait(20)


def line(name: str, result: dict[str, list[float]]) -> tuple[float, float]:
    posts = len(result["all"])
    rate = posts / result["wall"][0]
    p99 = pct(result["all"], 0.99)
    print(
        f"  {name:30s} {rate:6.0f} posts/s  p50 {statistics.median(result['all']) * 1000:7.2f} ms  "
        f"p99 {p99 * 1000:7.2f} ms  CPU {result['cpu'][0] / posts * 1000:.2f} ms/post  "
        f"answers {dict(Counter(int(c) for c in result['codes']))}"
    )
    return rate, p99


def run_receiver(incidents: int, sends: int, concurrency: int, processes: int, rate: float | None) -> dict | None:
    """A fresh receiver (its own journal) under the storm; the answers, then what the journal and the
    actions file say once every job ended."""
    workdir = Path(tempfile.mkdtemp(prefix="receiver-storm-"))
    actions_file = workdir / "actions.log"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    config = write_config(workdir, incidents, port, actions_file)
    token = workdir / "token"
    token.write_text(TOKEN)
    token.chmod(0o600)
    log = (workdir / "receiver.log").open("w")
    argv = [sys.executable, "-m", "tts_sentinel.cli", "receiver", "--config", str(config), "--token-file", str(token)]
    profile = os.environ.get("RECEIVER_STORM_PYSPY") if rate is None else None  # py-spy samples the receiver
    if profile:
        spy = str(Path(sys.executable).parent / "py-spy")
        argv = [spy, "record", "--gil", "--nonblocking", "-r", "100", "-f", "raw", "-o", profile, "--", *argv]
    proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
    auth = {"Authorization": f"Bearer {TOKEN}"}
    try:
        if not wait_up(url, proc, "/healthz"):
            print("receiver did not start; see", workdir / "receiver.log")
            return None
        server = receiver_pid(proc.pid) if profile else proc.pid
        syncs0 = journal_syncs(url)
        # The worker process that runs the jobs (receiver/split.py) and the intake process that
        # admits the posts (receiver/intake_process.py), told apart by their command lines.
        children = {pid: role_of(pid) for pid in child_pids(server)}
        workers = [pid for pid, role in children.items() if role == "worker"]
        intakes = [pid for pid, role in children.items() if role == "intake"]
        # CPU priority (receiver/priority.py): the front and the intake above the worker and its actions
        nices = {"front": os.getpriority(os.PRIO_PROCESS, server),
                 **{role: os.getpriority(os.PRIO_PROCESS, pid) for pid, role in children.items()}}
        cpu0, loop0 = process_cpu_seconds(server), loop_thread_cpu_seconds(server)
        worker0 = sum(process_cpu_seconds(pid) for pid in workers)
        intake0 = sum(process_cpu_seconds(pid) for pid in intakes)
        result = storm(port, incidents, sends, concurrency, processes, rate)
        result["loop_cpu"] = [loop_thread_cpu_seconds(server) - loop0]
        result["intake_cpu"] = [sum(process_cpu_seconds(pid) for pid in intakes) - intake0]
        # what answering the posts cost: the front and the intake process
        result["cpu"] = [process_cpu_seconds(server) - cpu0 + result["intake_cpu"][0]]
        # its CPU, and its children's that ended (the actions' /bin/sh), during the storm
        result["worker_cpu"] = [sum(process_cpu_seconds(pid, children=True) for pid in workers) - worker0]
        result["syncs"] = [after - before for after, before in zip(journal_syncs(url), syncs0, strict=True)]
        rss = rss_mib(server) + sum(rss_mib(pid) for pid in children)  # the front and its children
        # Wait for the workers to finish every job.
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            jobs = httpx.get(url + "/actions", params={"limit": 10_000}, headers=auth).json()
            if len(jobs) >= incidents and all(j["status"] not in ("queued", "running") for j in jobs):
                break
            time.sleep(0.5)
        jobs = httpx.get(url + "/actions", params={"limit": 10_000}, headers=auth).json()
        result["worker_cpu_total"] = [sum(process_cpu_seconds(pid, children=True) for pid in workers) - worker0]
        opened = httpx.get(url + "/incidents", params={"limit": 10_000}, headers=auth).json()
    finally:
        proc.send_signal(signal.SIGINT if profile else signal.SIGTERM)  # py-spy writes its file on SIGINT
        proc.wait(60)
        log.close()
    ran = Counter(actions_file.read_text().split()) if actions_file.exists() else Counter()
    return {"result": result, "jobs": jobs, "opened": opened, "ran": ran, "rss": rss, "nices": nices}


def report_receiver(name: str, run: dict, incidents: int) -> tuple[float, float, bool]:
    """Print the receiver's lines; (posts/s, p99, exactly once)."""
    result, jobs, opened, ran = run["result"], run["jobs"], run["opened"], run["ran"]
    rate, p99 = line(name, result)
    ms = 1000.0
    for kind in ("first", "duplicate", "metrics"):
        v = result[kind]
        if v:
            print(f"    {kind:9s} n={len(v):5d}  p50 {statistics.median(v) * ms:7.2f} ms  "
                  f"p99 {pct(v, 0.99) * ms:7.2f} ms")
    expected = incidents + (incidents + 3) // 4  # one service in four has a second fault family
    statuses = Counter(j["status"] for j in jobs)
    once = len(ran) == expected == len(jobs) == len(opened) and set(ran.values()) == {1}
    posts = len(result["all"])
    print(f"    CPU per post: {result['loop_cpu'][0] / posts * ms:.2f} ms in the HTTP loop thread, "
          f"{(result['cpu'][0] - result['loop_cpu'][0] - result['intake_cpu'][0]) / posts * ms:.2f} ms in the "
          f"front's others (answers, scrapes), "
          f"{result['intake_cpu'][0] / posts * ms:.2f} ms in the intake process; "
          f"{result['worker_cpu'][0] / posts * ms:.2f} ms in the worker process and its actions during the "
          f"storm ({result['worker_cpu_total'][0] / max(len(jobs), 1) * ms:.1f} ms per job, all jobs)")
    commits, fsyncs = result["syncs"]
    print(f"    journal during the storm: {commits:.0f} commits, {fsyncs:.0f} fsyncs "
          f"({commits / max(fsyncs, 1):.1f} commits per fsync, {fsyncs / posts:.2f} fsyncs per post)")
    print(f"    journal: {len(jobs)} jobs {dict(statuses)} for {len(opened)} incidents (expected {expected}), "
          f"duplicates absorbed {sum(j['duplicates'] for j in jobs)}; RSS {run['rss']:.0f} MiB (all its processes); "
          f"nice {', '.join(f'{role} {nice}' for role, nice in run['nices'].items())}")
    print(f"    actions run (command actuator side effect): {sum(ran.values())} for {len(ran)} incidents; "
          f"exactly one per incident: {'YES' if once else 'NO'}")
    return rate, p99, once


def main() -> int:
    incidents = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    sends = int(sys.argv[2]) if len(sys.argv) > 2 else 10
    concurrency = int(sys.argv[3]) if len(sys.argv) > 3 else 64
    processes = int(sys.argv[4]) if len(sys.argv) > 4 else 2
    target_rate = float(sys.argv[5]) if len(sys.argv) > 5 else 800.0
    posts = incidents * (sends // 2) * 2
    print(f"machine: {platform.node()} {platform.machine()}, {os.cpu_count()} CPUs, "
          f"Python {platform.python_version()}, load average {os.getloadavg()[0]:.1f} at the start")
    print(f"storm: {incidents} services x {sends} sends (HA pairs) = {posts} posts; load generator: "
          f"{processes} processes, keep-alive HTTP/1.1, pre-encoded bodies (bench/loadgen.py)")
    once_all = True
    print(f"closed loop, {concurrency} connections (throughput ceiling):")
    ceiling = run_server(NULL, incidents, sends, concurrency, processes, None)
    if ceiling is not None:
        line("load generator ceiling", ceiling)
        print("    (a server that answers a canned 200 without parsing: what the generator itself can push)")
    peer = run_server(PEER, incidents, sends, concurrency, processes, None)
    closed = run_receiver(incidents, sends, concurrency, processes, None)
    if closed is None:
        return 1
    rate, p99, once = report_receiver("tts-sentinel receiver", closed, incidents)
    once_all &= once
    if peer is not None:
        peer_rate, peer_p99 = line("peer: stdlib JSON handler", peer)
        print(f"    ratio receiver/peer: throughput {rate / peer_rate:.2f}x, p99 {p99 / peer_p99:.2f}x "
              "(the peer persists nothing)")
    print(f"open loop at {target_rate:.0f} posts/s (latency counted from each post's due time):")
    peer_open = run_server(PEER, incidents, sends, concurrency, processes, target_rate)
    opened = run_receiver(incidents, sends, concurrency, processes, target_rate)
    if opened is None:
        return 1
    open_rate, open_p99, once = report_receiver("tts-sentinel receiver", opened, incidents)
    once_all &= once
    if peer_open is not None:
        line("peer: stdlib JSON handler", peer_open)
    throughput = rate >= target_rate and open_rate >= 0.95 * target_rate
    latency = open_p99 < 0.1
    print(f"load average {os.getloadavg()[0]:.1f} at the end")
    print(f"goal >= {target_rate:.0f} posts/s (closed loop, and kept in the open loop): "
          f"{'met' if throughput else 'NOT met'}; p99 < 100 ms at {target_rate:.0f} posts/s (open loop): "
          f"{'met' if latency else 'NOT met'} on this run; exactly once: {'YES' if once_all else 'NO'}")
    return 0 if once_all else 1


def journal_syncs(url: str) -> tuple[float, float]:
    """The receiver's journal commits and fsyncs so far (GET /metrics)."""
    values = {"tts_receiver_journal_commits_total": 0.0, "tts_receiver_journal_fsyncs_total": 0.0}
    for text in httpx.get(url + "/metrics", timeout=30).text.splitlines():
        name, _, value = text.partition(" ")
        if name in values:
            values[name] = float(value)
    return values["tts_receiver_journal_commits_total"], values["tts_receiver_journal_fsyncs_total"]


def receiver_pid(parent: int) -> int:
    """The receiver under py-spy: the child of `parent`."""
    try:
        return int(Path(f"/proc/{parent}/task/{parent}/children").read_text().split()[0])
    except (OSError, IndexError, ValueError):
        return parent


def rss_mib(pid: int) -> float:
    """Resident memory of a process in MiB (Linux /proc), 0 elsewhere."""
    try:
        return resident_bytes(pid) / 2**20
    except OSError:
        return 0.0


if __name__ == "__main__":
    sys.exit(main())
