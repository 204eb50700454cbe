"""Seconds per probe run (L1, L2, L3, quality, streaming) against the in-process simulator, with peers.

Peers compared in the same run: pyworld dio+stonemask vs harvest for L3, dtaidistance's C
DTW vs its pure-Python path, and for vLLM-Omni the time to first streamed audio (SSE, raw
WAV, WebSocket) vs a whole non-streaming L2 answer. The simulator streams at its default
real-time factor of 0.1. Prints medians and ratios; asserts nothing.
Run: .venv/bin/python bench/probes_speed.py [runs]
"""

from __future__ import annotations

import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from tts_sentinel.exporter.audio.pitch import f0_contour, zscore_log_f0
from tts_sentinel.exporter.baseline import record_baseline
from tts_sentinel.exporter.probes.config import ProbesConfig
from tts_sentinel.exporter.probes.health import probe_health
from tts_sentinel.exporter.probes.quality import probe_quality
from tts_sentinel.exporter.probes.semantic import probe_semantic
from tts_sentinel.exporter.probes.streaming import probe_streaming
from tts_sentinel.exporter.probes.synthesis import probe_synthesis
from tts_sentinel.harness.stack import free_port
from tts_sentinel.simulator.config import SimulatorConfig
from tts_sentinel.simulator.runtime import InProcessSimulator
from tts_sentinel.simulator.voice import synthesize


def timed(fn, runs: int) -> float:
    seconds = []
    for _ in range(runs):
        t = time.perf_counter()
        result = fn()
        seconds.append(time.perf_counter() - t)
        if hasattr(result, "success") and not result.success:
            raise SystemExit(f"probe failed during the benchmark: {result.detail}")
    return statistics.median(seconds)


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"Python {platform.python_version()}; median of {runs} runs")
    with tempfile.TemporaryDirectory() as tmp:
        sim_config = SimulatorConfig(web_port=free_port(), api_port=free_port(), log_dir=Path(tmp) / "logs")
        with InProcessSimulator(sim_config) as sim:
            request = {"url": sim.api_url + "/tts"}
            probes = ProbesConfig(
                health={"url": sim.web_url + "/health"}, baseline_dir=Path(tmp) / "baseline",
                synthesis={"request": request},
                semantic={"request": request, "report_path": str(Path(tmp) / "report.log")},
                quality={"request": request},
            )
            record_baseline(probes)
            harvest = probes.semantic.model_copy(update={"f0_method": "harvest"})
            rows = {
                "L1 health": timed(lambda: probe_health(probes.health), runs * 4),
                "L2 synthesis (1 target)": timed(lambda: probe_synthesis(probes.synthesis), runs),
                "L3 semantic, dio (2 styles)": timed(lambda: probe_semantic(probes.semantic, probes), runs),
                "L3 semantic, harvest (2 styles)": timed(lambda: probe_semantic(harvest, probes), max(1, runs // 2)),
                "quality (1 sample, STOI)": timed(lambda: probe_quality(probes.quality, probes), runs),
            }
        rows.update(streaming_rows(Path(tmp), runs))
    for name, seconds in rows.items():
        print(f"  {name:36s} {seconds:8.3f} s")
    ratio = rows["L3 semantic, harvest (2 styles)"] / rows["L3 semantic, dio (2 styles)"]
    print(f"  harvest / dio L3 run: {ratio:.1f}x")
    whole = rows["L2 synthesis, vLLM-Omni API"]
    for transport in ("sse", "audio", "websocket"):
        first = rows[f"  first audio, {transport}"]
        print(f"  first {transport} audio / whole L2 answer: {first / whole:.2f}x")

    from dtaidistance import dtw

    a = zscore_log_f0(f0_contour(synthesize("请用开心的语气说:今天天气真好!", "Vivian", "happy"), 24000))
    b = zscore_log_f0(f0_contour(synthesize("请用开心的语气说:今天天气真好!", "Serena", "happy"), 24000))
    window = int(0.2 * max(len(a), len(b)))
    c_s = timed(lambda: dtw.warping_path(a, b, window=window, use_c=True), runs * 4)
    py_s = timed(lambda: dtw.warping_path(np.asarray(a), np.asarray(b), window=window, use_c=False), runs)
    print(f"  DTW path {len(a)}x{len(b)} frames: dtaidistance C {c_s * 1000:.2f} ms, "
          f"pure Python {py_s * 1000:.1f} ms ({py_s / c_s:.0f}x)")


def streaming_rows(tmp: Path, runs: int) -> dict[str, float]:
    """The streaming probe per transport against a vLLM-Omni-mode simulator, and L2 on the same API."""
    config = SimulatorConfig(web_port=free_port(), api_port=free_port(), log_dir=tmp / "omni-logs", protocol="openai")
    with InProcessSimulator(config) as sim:
        request = {"protocol": "openai", "url": sim.api_url + "/v1/audio/speech"}
        probes = ProbesConfig(synthesis={"request": request, "targets": [{"lang": "Chinese"}]},
                              modules={"stream": {"prober": "streaming", "request": request}})
        rows = {"L2 synthesis, vLLM-Omni API": timed(lambda: probe_synthesis(probes.synthesis), runs)}
        for transport in ("sse", "audio", "websocket"):
            module = probes.modules["stream"].model_copy(update={"transports": [transport]})
            firsts: list[float] = []

            def run(module=module, firsts=firsts):
                result = probe_streaming(module)
                firsts += [m.value for m in result.gauges if m.name == "tts_streaming_first_audio_seconds"]
                return result

            rows[f"streaming, {transport} (whole stream)"] = timed(run, runs)
            rows[f"  first audio, {transport}"] = statistics.median(firsts)
    return rows


if __name__ == "__main__":
    main()
