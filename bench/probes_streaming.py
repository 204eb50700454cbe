"""The streaming probe over SSE and WebSocket against the vLLM-Omni-mode simulator, with a plain client as peer.

Per transport, in the same run and interleaved (probe, peer, probe, peer, ...): the probe
(`probe_streaming`, which times every chunk, builds the player model, assembles the audio and
runs L2's WAV checks) and a plain client that only reads the same stream (httpx for SSE:
decode each event's base64 audio until speech.audio.done; the websockets sync client for
WebSocket: the same three messages, binary frames until session.done). Both send the same
request. Over SSE both count the time to first audio from the request, once their httpx client
is built (see request_sent in the probe), and the whole stream from before the client is built
(one client per stream, as the probe makes). Prints the medians of time to first audio and of
the whole stream, the ratios probe / plain client, and what building an httpx client costs by
itself. The simulator streams at its default real-time factor (0.1). Asserts nothing.
Run: .venv/bin/python bench/probes_streaming.py [runs]
"""

from __future__ import annotations

import base64
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
from websockets.sync.client import connect

from tts_sentinel.exporter.probes.config import ProbesConfig, StreamingProbeConfig
from tts_sentinel.exporter.probes.streaming import probe_streaming
from tts_sentinel.harness.stack import free_port
from tts_sentinel.simulator.config import SimulatorConfig
from tts_sentinel.simulator.runtime import InProcessSimulator


def client_build_seconds(runs: int) -> float:
    """Median seconds of `httpx.Client()` itself (its TLS context), which neither clock counts."""
    seconds = []
    for _ in range(runs):
        started = time.perf_counter()
        httpx.Client().close()
        seconds.append(time.perf_counter() - started)
    return statistics.median(seconds)


def probe_once(config: StreamingProbeConfig) -> tuple[float, float, float]:
    """(first audio, whole stream, audio seconds) of one probe run; exits when the probe fails.

    The whole stream is the wall time of the probe call, its client construction included."""
    started = time.perf_counter()
    result = probe_streaming(config)
    total = time.perf_counter() - started
    if not result.success:
        raise SystemExit(f"the probe failed during the benchmark: {result.detail}")
    gauges = {m.name: m.value for m in result.gauges}
    return gauges["tts_streaming_first_audio_seconds"], total, gauges["tts_streaming_audio_seconds"]


def plain_sse(config: StreamingProbeConfig) -> tuple[float, float, int]:
    """(first audio, whole stream, audio bytes) read with httpx alone."""
    body = config.request.body(config.text, config.lang, config.speaker, config.instructions)
    body.update(stream=True, stream_format="sse", response_format=config.response_format)
    whole = time.perf_counter()
    with httpx.Client(timeout=30) as client:  # built before the first-audio clock, as the probe does
        started, first, size = time.perf_counter(), None, 0
        with client.stream("POST", config.request.url, json=body) as response:
            response.raise_for_status()
            for line in response.iter_lines():
                if not line.startswith("data:"):
                    continue
                event = json.loads(line[5:])
                if event["type"].endswith(".done"):
                    break
                if event["type"].endswith(".delta"):
                    size += len(base64.b64decode(event["audio"]))
                    first = first if first is not None else time.perf_counter() - started
    if first is None:
        raise SystemExit("the plain SSE client got no audio")
    return first, time.perf_counter() - whole, size


def plain_websocket(config: StreamingProbeConfig) -> tuple[float, float, int]:
    """(first audio, whole stream, audio bytes) read with the websockets sync client alone."""
    session = {"type": "session.config", "voice": config.speaker, "language": config.lang,
               "response_format": "pcm", "stream_audio": True}
    started, first, size = time.perf_counter(), None, 0
    with connect(config.ws_url(), proxy=None, compression=None, max_size=2**24, close_timeout=1) as ws:
        for message in (session, {"type": "input.text", "text": config.text}, {"type": "input.done"}):
            ws.send(json.dumps(message))
        while True:
            message = ws.recv(timeout=30)
            if isinstance(message, bytes):
                size += len(message)
                first = first if first is not None else time.perf_counter() - started
            elif json.loads(message)["type"] == "session.done":
                break
        ws.send(json.dumps({"type": "session.close"}))
    if first is None:
        raise SystemExit("the plain WebSocket client got no audio")
    return first, time.perf_counter() - started, size


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"Python {platform.python_version()}; median of {runs} interleaved runs")
    print(f"  httpx.Client() alone: {client_build_seconds(runs) * 1000:.1f} ms (outside both SSE first-audio clocks)")
    peers = {"sse": plain_sse, "websocket": plain_websocket}
    with tempfile.TemporaryDirectory() as tmp:
        sim_config = SimulatorConfig(web_port=free_port(), api_port=free_port(), log_dir=Path(tmp) / "logs",
                                     protocol="openai")
        with InProcessSimulator(sim_config) as sim:
            request = {"protocol": "openai", "url": sim.api_url + "/v1/audio/speech", "timeout_seconds": 30}
            base = ProbesConfig(modules={"stream": {"prober": "streaming", "request": request}}).modules["stream"]
            for transport, peer in peers.items():
                config = base.model_copy(update={"transports": [transport]})
                probe_once(config)  # warm both paths (imports, connection setup) before timing
                peer(config)
                probe_rows, peer_rows = [], []
                for _ in range(runs):
                    probe_rows.append(probe_once(config))
                    peer_rows.append(peer(config))
                p_first, p_total = (statistics.median(r[i] for r in probe_rows) for i in (0, 1))
                c_first, c_total = (statistics.median(r[i] for r in peer_rows) for i in (0, 1))
                audio = statistics.median(r[2] for r in probe_rows)
                print(f"  {transport:9s} probe:  first audio {p_first * 1000:7.1f} ms, whole stream {p_total:.3f} s "
                      f"({audio:.2f} s of audio)")
                print(f"  {transport:9s} plain:  first audio {c_first * 1000:7.1f} ms, whole stream {c_total:.3f} s")
                print(f"  {transport:9s} probe / plain: first audio {p_first / c_first:.2f}x, "
                      f"whole stream {p_total / c_total:.2f}x (+{(p_total - c_total) * 1000:.1f} ms per stream)")


if __name__ == "__main__":
    main()
