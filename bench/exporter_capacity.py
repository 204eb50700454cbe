"""How far one exporter goes: a real `tts-sentinel exporter` with every probe on, following a log
written at a ladder of rates, and mtail following the same file in the same run.

The simulator plays vLLM-Omni under supervisord (harness Stack configs), and the exporter runs
every probe against it: L1 health (every 5 s), L2 synthesis, L3 semantic and quality (with a
baseline recorded first) and the streaming probe over SSE and WebSocket (every 15 s: busier than
production's 60 s / hourly). Its `inference` log is a file only this bench writes: seed-format
lines from bench/logs_data.py (INFO, DEBUG, WARNING request lines; 1 line in 97 one of the error
patterns the exporter counts, vLLM-Omni's tracebacks among them), appended every 10 ms at the
step's rate. mtail (`--logs` on the same file, a program counting the exporter's own inference
patterns) is the peer. Nothing else of the stack runs: no Prometheus, so this bench scrapes
/metrics itself every 5 s, as a Prometheus would, and times each scrape.

Each step writes at one rate for a fixed time. Measured over the step, per process:
CPU (utime+stime from /proc/PID/stat, children included, as % of one core), resident memory
(VmRSS at the end, VmHWM), lines counted vs written when the writer stops and whether the count
caught up within 5 s (the exporter polls every 0.5 s). After 0 (probes only), 1,000 and
10,000 lines/s the rate doubles until the exporter (or mtail) stops keeping up, or --max-rate.

Exit code 1 when the exporter did not keep up with 10,000 lines/s.

Run: .venv/bin/python bench/exporter_capacity.py [--seconds 60] [--step-seconds 20] [--max-rate 160000]
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from logs_data import write_log  # noqa: E402  (bench/logs_data.py, next to this file)

from tts_sentinel.harness.procstat import cpu_seconds, resident_bytes  # noqa: E402
from tts_sentinel.harness.stack import INFERENCE_PROGRAM, WEB_PROGRAM, Stack, StackError, Timing, free_port  # noqa: E402
from tts_sentinel.loghistory.config import LogsConfig  # noqa: E402

TICK = 0.01  # the writer appends what is due every 10 ms
SCRAPE_EVERY = 5.0
CATCH_UP = 5.0  # how long to wait for the count to reach the lines written, after the writer stops
KEEPS_UP = 1.5  # caught up this soon after the writer stopped: it kept up (it polls every 0.5 s)
IDLE_SECONDS = 30.0  # the probes-only step: two rounds of the 15 s probes
DRAIN = 90.0  # at most this long for a backlog to be read before the halfway step


class CapacityStack(Stack):
    """The harness stack's configs, the inference log moved to a file only the bench writes; runs only
    supervisord (the simulator) and the exporter."""

    def __init__(self, workdir: Path) -> None:
        super().__init__(workdir, timing=Timing(probe_interval_seconds=5.0), protocol="openai", audio_evidence=True)
        self.load_log = self.dir / "load" / "inference.log"

    def sentinel_config(self) -> dict[str, Any]:
        config = super().sentinel_config()
        for f in config["exporter"]["logs"]["files"]:
            if f["name"] == "inference":
                f["path"] = str(self.load_log)
        return config

    def start_exporter(self) -> int:
        """Start the simulator and the exporter (baseline first, as a user would); the exporter's pid."""
        self.write_configs()
        self.load_log.parent.mkdir(exist_ok=True)
        self.load_log.touch()
        try:
            self._spawn("supervisord", [self.python, "-m", "supervisor.supervisord", "-c",
                                        str(self.dir / "supervisord.conf")])
            programs = (WEB_PROGRAM, INFERENCE_PROGRAM)
            self._wait("supervisord", lambda: all(
                self.supervisor().getProcessInfo(p)["statename"] == "RUNNING" for p in programs))
            self._wait(INFERENCE_PROGRAM, lambda: self._http_ok(self.url("api", "/health")))
            cli = [self.python, "-m", "tts_sentinel.cli"]
            done = subprocess.run([*cli, "baseline", "--config", str(self.config_path)], timeout=180,
                                  capture_output=True, text=True, start_new_session=True)
            if done.returncode:
                raise StackError(f"`tts-sentinel baseline` failed: {(done.stdout + done.stderr)[-600:]}")
            self._spawn("exporter", [*cli, "exporter", "--config", str(self.config_path)])
            self._wait("exporter", lambda: self._http_ok(self.url("exporter", "/healthz")))
        except BaseException:
            self.stop()
            raise
        return self._procs["exporter"].pid

    def inference_patterns(self) -> LogsConfig:
        return LogsConfig(**self.sentinel_config()["exporter"]["logs"])


@dataclass
class Usage:
    """CPU seconds (self, and reaped children) of one process at one instant."""

    cpu: float
    wall: float

    @classmethod
    def of(cls, pid: int) -> Usage:
        return cls(cpu_seconds(pid, children=True), time.monotonic())

    def percent_since(self, before: Usage) -> float:
        return 100.0 * (self.cpu - before.cpu) / (self.wall - before.wall)


def memory_mib(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) in MiB."""
    return resident_bytes(pid) / 2**20, resident_bytes(pid, peak=True) / 2**20


class LineWriter:
    """Appends pre-generated lines to `path` at a set rate, from a thread, whole lines per write."""

    def __init__(self, path: Path, corpus: Path) -> None:
        self.blob = corpus.read_bytes()
        self.starts = [0] + [m.end() for m in re.finditer(rb"\n", self.blob)]
        self.lines = len(self.starts) - 1
        self.fd = os.open(path, os.O_WRONLY | os.O_APPEND)
        self.written = 0
        self._cursor = 0

    def _write(self, n: int) -> None:
        while n:
            take = min(n, self.lines - self._cursor)
            os.write(self.fd, self.blob[self.starts[self._cursor]:self.starts[self._cursor + take]])
            self._cursor = (self._cursor + take) % self.lines
            self.written += take
            n -= take

    def run(self, rate: float, seconds: float) -> None:
        """Write at `rate` lines/s for `seconds` (in this thread); falls behind only if the machine does."""
        start, due_written = time.monotonic(), self.written
        end = start + seconds
        while (now := time.monotonic()) < end:
            due = due_written + int(rate * (now - start))
            if due > self.written:
                self._write(due - self.written)
            time.sleep(max(0.0, TICK - (time.monotonic() - now)))
        self._write(due_written + int(rate * seconds) - self.written)

    def close(self) -> None:
        os.close(self.fd)


def sample_value(text: str, name: str, **labels: str) -> float | None:
    """The first sample of `name` whose labels include `labels`, from a /metrics text."""
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        if all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return None


def series(text: str) -> int:
    """Samples in a /metrics text: every line that is not a comment or blank."""
    return sum(1 for line in text.splitlines() if line and not line.startswith("#"))


def series_by_family(text: str) -> list[tuple[str, int]]:
    """Series per metric family (histogram parts and _created together), most first."""
    families = {line.split()[2] for line in text.splitlines() if line.startswith("# TYPE ")}
    counts: dict[str, int] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        name = re.split(r"[{ ]", line, maxsplit=1)[0]
        family = next((f for f in (name, *(name.removesuffix(x) for x in ("_bucket", "_sum", "_count", "_total",
                                                                            "_created"))) if f in families), name)
        counts[family] = counts.get(family, 0) + 1
    return sorted(counts.items(), key=lambda kv: -kv[1])


@dataclass
class Peer:
    name: str
    pid: int
    metrics_url: str
    counted: Any  # (/metrics text) -> lines counted so far
    before: Usage | None = None


@dataclass
class StepResult:
    rate: int
    seconds: float
    written: int
    cpu: dict[str, float] = field(default_factory=dict)
    rss: dict[str, tuple[float, float]] = field(default_factory=dict)
    lag_at_stop: dict[str, int] = field(default_factory=dict)
    caught_up: dict[str, float | None] = field(default_factory=dict)
    scrape_ms: list[float] = field(default_factory=list)
    series: int = 0


def counted_now(client: httpx.Client, peer: Peer) -> int:
    return int(peer.counted(client.get(peer.metrics_url, timeout=10).text) or 0)


def run_step(rate: int, seconds: float, writer: LineWriter, peers: list[Peer], client: httpx.Client,
             exporter_url: str) -> StepResult:
    base = {p.name: counted_now(client, p) for p in peers}
    written0 = writer.written
    for p in peers:
        p.before = Usage.of(p.pid)
    result = StepResult(rate, seconds, 0)
    thread = threading.Thread(target=writer.run, args=(rate, seconds))
    thread.start()
    next_scrape = time.monotonic() + 1.0
    while thread.is_alive():  # scrape as a Prometheus would, and time it
        if time.monotonic() >= next_scrape:
            t0 = time.perf_counter()
            text = client.get(exporter_url, timeout=10).text
            result.scrape_ms.append(1000 * (time.perf_counter() - t0))
            result.series = series(text)
            next_scrape += SCRAPE_EVERY
        thread.join(0.05)
    for p in peers:
        result.cpu[p.name] = Usage.of(p.pid).percent_since(p.before)
        result.rss[p.name] = memory_mib(p.pid)
    result.written = writer.written - written0
    stopped = time.monotonic()
    pending = {p.name: p for p in peers}
    for p in peers:
        result.lag_at_stop[p.name] = result.written - (counted_now(client, p) - base[p.name])
        result.caught_up[p.name] = None
    while pending and time.monotonic() - stopped < CATCH_UP:
        for name, p in list(pending.items()):
            if counted_now(client, p) - base[name] >= result.written:
                result.caught_up[name] = time.monotonic() - stopped
                del pending[name]
        time.sleep(0.05)
    return result


def drained(client: httpx.Client, peers: list[Peer], written: int, seconds: float) -> bool:
    """Wait until every peer counted all `written` lines; False when one has not after `seconds`."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if all(counted_now(client, p) >= written for p in peers):
            return True
        time.sleep(0.2)
    return False


def mtail_program(config: LogsConfig, progs: Path) -> None:
    """An mtail program counting lines and the exporter's inference patterns (bench/logs_scan.py's way)."""
    body = ["counter tts_log_pattern_matches_total by pattern", "counter tts_log_lines_total", ""]
    for p in config.patterns_for("inference"):
        body.append(f'/{p.regex.replace("/", chr(92) + "/")}/ {{\n  tts_log_pattern_matches_total["{p.name}"]++\n}}')
    body.append("/$/ {\n  tts_log_lines_total++\n}")
    progs.mkdir(exist_ok=True)
    (progs / "tts.mtail").write_text("\n".join(body) + "\n")


def start_mtail(config: LogsConfig, log: Path, work: Path) -> tuple[subprocess.Popen[bytes], Peer] | None:
    if shutil.which("mtail") is None:
        print("mtail is not installed: no peer in this run", file=sys.stderr)
        return None
    mtail_program(config, work / "progs")
    port = free_port()
    out = (work / "mtail.log").open("wb")
    proc = subprocess.Popen(["mtail", "--progs", str(work / "progs"), "--logs", str(log), "--address", "127.0.0.1",
                             "--port", str(port), "--logtostderr"], stdout=out, stderr=subprocess.STDOUT,
                            start_new_session=True)
    out.close()
    url = f"http://127.0.0.1:{port}/metrics"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if sample_value(httpx.get(url, timeout=2).text, "tts_log_lines_total") is not None:
                return proc, Peer("mtail", proc.pid, url, lambda t: sample_value(t, "tts_log_lines_total"))
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    print(f"mtail did not start; see {work / 'mtail.log'}", file=sys.stderr)
    proc.kill()
    proc.wait()
    return None


def machine() -> str:
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.machine())
    return f"{platform.node()}, {os.cpu_count()} CPUs ({model}), Python {platform.python_version()}"


def kept_up(r: StepResult, name: str) -> bool:
    """Counted every line written within KEEPS_UP of the writer stopping (a backlog takes longer)."""
    caught = r.caught_up.get(name)
    return caught is not None and caught <= KEEPS_UP


def report(results: list[StepResult], loads: list[tuple[float, float, float]]) -> None:
    names = list(results[0].cpu)
    print(f"\nexporter_capacity {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {machine()}")
    print("load average (1/5/15 min) at each step's end: " + "; ".join(f"{a:.2f}/{b:.2f}/{c:.2f}" for a, b, c in loads))
    head = f"{'lines/s':>8} {'s':>4} " + " ".join(
        f"{n + ' CPU%':>13} {n + ' RSS/HWM MiB':>20} {'lag@stop':>8} {'caught up':>9}" for n in names)
    print(head + f" {'ratio':>6} {'scrape ms p50/max':>17} {'series':>6}   (caught up: ! later than {KEEPS_UP} s)")
    for r in results:
        cells = []
        for n in names:
            rss, hwm = r.rss[n]
            caught = r.caught_up[n]
            up = "never" if caught is None else f"{caught:.1f}s" + ("" if kept_up(r, n) else "!")
            cells.append(f"{r.cpu[n]:13.1f} {f'{rss:.0f}/{hwm:.0f}':>20} {r.lag_at_stop[n]:8d} {up:>9}")
        ratio = f"{r.cpu['exporter'] / r.cpu['mtail']:6.2f}" if r.rate and r.cpu.get("mtail") else "   n/a"
        scrape = f"{statistics.median(r.scrape_ms):.1f}/{max(r.scrape_ms):.1f}" if r.scrape_ms else "-"
        print(f"{r.rate:8d} {r.seconds:4.0f} " + " ".join(cells) + f" {ratio} {scrape:>17} {r.series:6d}")
    idle = next((r for r in results if r.rate == 0), None)
    main = next((r for r in results if r.rate == 10_000), None)
    if idle and main and "mtail" in main.cpu:
        extra = main.cpu["exporter"] - idle.cpu["exporter"]
        print(f"at 10,000 lines/s: exporter {main.cpu['exporter']:.1f}% of a core ({idle.cpu['exporter']:.1f}% with "
              f"probes only, so {extra:.1f}% for the log), mtail {main.cpu['mtail']:.1f}%: "
              f"log cost {extra / main.cpu['mtail']:.2f}x mtail's ({extra / 10:.2f}% of a core per 1,000 lines/s)")
    top = [r.rate for r in results if r.rate and kept_up(r, "exporter")]
    if top:
        print(f"highest rate the exporter kept up with in this run: {max(top):,} lines/s")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=60.0, help="length of the 10,000 lines/s step")
    ap.add_argument("--step-seconds", type=float, default=20.0, help="length of every other step")
    ap.add_argument("--max-rate", type=int, default=160_000, help="stop the ladder here (0: no ladder past 10,000)")
    ap.add_argument("--warmup", type=float, default=20.0, help="probes only, before the first step is measured")
    args = ap.parse_args()
    rates = [0, 1_000, 10_000]
    rate = 20_000
    while args.max_rate and rate <= args.max_rate:
        rates.append(rate)
        rate *= 2
    work = Path(tempfile.mkdtemp(prefix="exporter-capacity-"))
    stack = CapacityStack(work / "stack")
    mtail: subprocess.Popen[bytes] | None = None
    results: list[StepResult] = []
    probes = ""
    loads = []
    try:
        write_log(work / "corpus.log", 200_000, datetime(2026, 12, 1, 0, 0, 0), step_ms=0.1, error_every=97)
        print(f"starting the simulator and the exporter in {work} ...", flush=True)
        pid = stack.start_exporter()
        exporter_url = stack.url("exporter", "/metrics")
        peers = [Peer("exporter", pid, exporter_url,
                      lambda t: sample_value(t, "tts_log_lines_total", log="inference"))]
        started = start_mtail(stack.inference_patterns(), stack.load_log, work)
        if started:
            mtail, peer = started
            peers.append(peer)
        writer = LineWriter(stack.load_log, work / "corpus.log")
        with httpx.Client() as client:
            time.sleep(args.warmup)
            halfway = False
            while rates:
                rate = rates.pop(0)
                seconds = {0: max(IDLE_SECONDS, args.step_seconds), 10_000: args.seconds}.get(rate, args.step_seconds)
                print(f"step: {rate:,} lines/s for {seconds:.0f} s", flush=True)
                r = run_step(rate, seconds, writer, peers, client, exporter_url)
                results.append(r)
                loads.append(os.getloadavg())
                if rate > 10_000 and not all(kept_up(r, p.name) for p in peers):
                    # Once more halfway from the last rate kept up, after the backlog is read (it would
                    # spill into that step's figures); then stop.
                    last = max(x.rate for x in results if all(kept_up(x, p.name) for p in peers))
                    rates = [] if halfway or rate - last < 5_000 else [(last + rate) // 2000 * 1000]
                    halfway = True
                    if rates and not drained(client, peers, writer.written, DRAIN):
                        rates = []
            probes = client.get(exporter_url, timeout=10).text
        writer.close()
    finally:
        if mtail is not None:
            mtail.terminate()
            mtail.wait(timeout=10)
        stack.stop()
        shutil.rmtree(work, ignore_errors=True)
    if not results:
        return 1
    report(results, loads)
    print("series by family (most first): " + ", ".join(f"{name} {n}" for name, n in series_by_family(probes)))
    ran = re.findall(r'^tts_probe_success\{probe="([^"]+)"\} (\S+)$', probes, re.M)
    print("probes that ran (last result): " + ", ".join(f"{name}={'ok' if float(v) else 'FAILED'}" for name, v in ran))
    main_step = next((r for r in results if r.rate == 10_000), None)
    return 0 if main_step is not None and kept_up(main_step, "exporter") else 1


if __name__ == "__main__":
    sys.exit(main())
