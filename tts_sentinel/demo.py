"""`tts-sentinel demo`: the whole loop on loopback until Ctrl-C.

Starts the simulator under supervisord, the exporter, the receiver, Alertmanager
and Prometheus (`tts_sentinel.stack`), prints the URLs and how to inject a fault,
then prints what happens: alerts firing and resolving, actions the receiver takes.
"""

from __future__ import annotations

import argparse
import shutil
import signal
import socket
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from tts_sentinel.drill import StackEndpoints, firing_alerts, journal
from tts_sentinel.stack import Ports, Stack, StackError

# The seed's and Prometheus' usual ports, used when free so the URLs look familiar.
PREFERRED = Ports(web=7860, api=8000, exporter=9464, receiver=9465, prometheus=9090, alertmanager=9093,
                  supervisord=9001, oncall=9466)


def _is_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def pick_ports() -> Ports:
    """The preferred ports where free, random free ports elsewhere."""
    fresh = Ports()
    for name, port in vars(PREFERRED).items():
        if _is_free(port):
            setattr(fresh, name, port)
    return fresh


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of `tts-sentinel demo`."""
    parser.add_argument("--dir", default=".demo", help="where configs, logs and data go (default .demo, wiped)")
    parser.add_argument("--duration", type=float, default=0,
                        help="stop by itself after this many seconds (default: run until Ctrl-C)")


def run(args: argparse.Namespace) -> int:
    """Run the demo stack, narrate events, stop everything on Ctrl-C/SIGTERM or after --duration."""
    directory = Path(args.dir)
    if directory.exists():
        shutil.rmtree(directory)
    stack = Stack(directory, ports=pick_ports())
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print("starting the TTS Sentinel demo on loopback ...", flush=True)
    try:
        stack.start()
    except StackError as exc:
        print(f"demo failed to start: {exc}")
        return 1
    try:
        print(
            f"""
  TTS service (simulator, supervisord programs tts-webui, tts-inference)
    web front      {stack.url('web', '/health')}
    inference API  {stack.url('api', '/tts')}
  exporter         {stack.url('exporter', '/metrics')}   probe: {stack.url('exporter', '/probe?module=health')}
  receiver         {stack.url('receiver', '/actions')}   (bearer token in {directory / 'receiver.token'})
  Prometheus       {stack.url('prometheus', '/alerts')}
  Alertmanager     {stack.url('alertmanager')}
  supervisord      {stack.url('supervisord')}
  on-call pages    {directory / 'run' / 'oncall.jsonl'}

  inject a fault:  .venv/bin/tts-sentinel drill hang --dir {directory}    (also: oom, silent, error500, crash)
  stop:            Ctrl-C
""",
            flush=True,
        )
        narrate(StackEndpoints.from_dir(directory), args.duration, lambda: stopping)
    finally:
        print("stopping every process the demo started ...", flush=True)
        stack.stop()
    print("demo stopped.")
    return 0


def narrate(endpoints: StackEndpoints, duration: float, stopping: Callable[[], bool]) -> None:
    """Print alert and action changes once a second until `stopping()` or `duration` elapses."""
    start = time.monotonic()
    firing: set[str] = set()
    seen: dict[object, object] = {}
    while not stopping() and (duration <= 0 or time.monotonic() - start < duration):
        try:
            now = {f"{a['labels']['alertname']} (tier={a['labels'].get('tier')})"
                   for a in firing_alerts(endpoints.prometheus)}
            for name in sorted(now - firing):
                print(f"{time.strftime('%H:%M:%S')}  FIRING    {name}", flush=True)
            for name in sorted(firing - now):
                print(f"{time.strftime('%H:%M:%S')}  resolved  {name}", flush=True)
            firing = now
            for row in journal(endpoints.receiver, endpoints.token):
                if seen.get(row.get("id")) != row.get("status"):
                    seen[row.get("id")] = row.get("status")
                    print(f"{time.strftime('%H:%M:%S')}  ACTION    {_describe(row)}", flush=True)
        except (httpx.HTTPError, ValueError, KeyError) as exc:
            print(f"{time.strftime('%H:%M:%S')}  (a part of the stack does not answer: {exc})", flush=True)
        time.sleep(1)


def _describe(row: dict[str, object]) -> str:
    keys = ("id", "tier", "target", "status", "result", "reason")
    return "  ".join(f"{k}={row[k]}" for k in keys if row.get(k) not in (None, ""))
