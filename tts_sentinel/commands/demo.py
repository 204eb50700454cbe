"""`tts-sentinel demo`: the whole loop on loopback until Ctrl-C."""

from __future__ import annotations

import argparse
import shutil
import signal
from pathlib import Path

from tts_sentinel.harness.demo import narrate, pick_ports, prometheus_alerts_url
from tts_sentinel.harness.drill import StackEndpoints
from tts_sentinel.harness.stack import Stack, StackError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of `tts-sentinel demo`."""
    parser.add_argument("--dir", default=".demo", help="where configs, logs and data go (default .demo, wiped)")
    parser.add_argument("--duration", type=float, default=0,
                        help="stop by itself after this many seconds (default: run until Ctrl-C)")
    parser.add_argument("--vllm-omni", action="store_true",
                        help="the simulator plays vLLM-Omni: its speech API, /metrics (scraped as job vllm-omni, "
                             "the dashboard's vLLM-Omni row), SSE and WebSocket streaming probed")


def demo_stack(args: argparse.Namespace) -> Stack:
    """The stack the demo runs: seed mode, or vLLM-Omni mode with `--vllm-omni`."""
    return Stack(Path(args.dir), ports=pick_ports(), protocol="openai" if args.vllm_omni else "seed",
                 audio_evidence=True)


def run(args: argparse.Namespace) -> int:
    """Run the demo stack, narrate events, stop everything on Ctrl-C/SIGTERM or after --duration."""
    directory = Path(args.dir)
    if directory.exists():
        shutil.rmtree(directory)
    stack = demo_stack(args)
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
    omni = stack.protocol == "openai"
    speech_path = "/v1/audio/speech" if omni else "/tts"
    more_faults = "hung_engine, underrun, engine_fatal, runaway, oom" if omni else "oom, silent, error500, crash"
    engine_metrics = f"\n    engine metrics {stack.url('api', '/metrics')}   (vLLM-Omni's own)" if omni else ""
    try:
        print(
            f"""
  TTS service (simulator, supervisord programs tts-webui, tts-inference)
    web front      {stack.url('web', '/health')}
    inference API  POST {stack.url('api', speech_path)}{engine_metrics}
  exporter         {stack.url('exporter', '/metrics')}   probe: {stack.url('exporter', '/probe?module=health')}
  receiver         {stack.url('receiver', '/actions')}   (bearer token in {directory / 'receiver.token'})
  Prometheus       {prometheus_alerts_url(stack.url('prometheus'), stack.web.auth())}
  Alertmanager     {stack.url('alertmanager')}
                   (both ask for a login: user {stack.web.username}, password in {stack.web.password_file})
  supervisord      {stack.url('supervisord')}
  on-call pages    {directory / 'run' / 'oncall.jsonl'}

  in another terminal, point every command at this demo first:
                   export TTS_SENTINEL_CONFIG={stack.config_path.resolve()}
  inject a fault:  .venv/bin/tts-sentinel drill hang --dir {directory}    (also: {more_faults})
  then:            .venv/bin/tts-sentinel actions; .venv/bin/tts-sentinel triage --since 10m
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
