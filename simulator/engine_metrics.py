"""The engine's own /metrics in vLLM-Omni mode: the families, names and types the real server exposes.

Two namespaces, as vLLM-Omni serves them: its pipeline and audio families (`vllm_omni:` in
recent releases, `vllm:omni_` in older ones; `metric_prefix` picks) and the upstream vLLM
engine's `vllm:` families. Counters and histograms grow with events; the gauges (requests
running and waiting, KV-cache usage) are read from the engine's state at scrape time.
Bucket bounds are ours; the names, types and labels follow the public metrics reference.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from tts_sentinel.simulator.config import SimulatorConfig

# Qwen3-TTS runs as two stages: the talker (AR, stage 0, where the KV cache lives) and
# code2wav (stage 1, which emits the audio the audio families describe).
TALKER_STAGE = "0"
AUDIO_STAGE = "1"
REPLICA = "0"
CONTINUITY_THRESHOLD_MS = "100"
# KV cache taken by one running request, and the usage above which new work preempts old.
KV_PER_REQUEST = 0.24
KV_IDLE = 0.02
PREEMPT_ABOVE = 0.95
# Qwen3-TTS-12Hz: the talker emits 12 codec tokens per second of audio.
TOKENS_PER_AUDIO_SECOND = 12

_SECONDS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
_FAST = (0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
_RTF = (0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 5.0)
_AUDIO_SECONDS = (0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0)


@dataclass(frozen=True)
class StreamStats:
    """What the engine measured while streaming one request."""

    first_packet_seconds: float
    worst_underrun_seconds: float


class _EngineState(Collector):
    """Requests in flight and KV-cache usage, turned into gauges on every scrape."""

    def __init__(self, prefix: str, model: str, max_num_seqs: int) -> None:
        self._lock = threading.Lock()
        self._prefix = prefix
        self._model = model
        self._max_num_seqs = max_num_seqs
        self.in_flight = 0

    def change(self, delta: int) -> int:
        """Add `delta` to the requests in flight; the new count."""
        with self._lock:
            self.in_flight += delta
            return self.in_flight

    def split(self) -> tuple[int, int]:
        """(running, waiting): the scheduler runs at most max_num_seqs at once."""
        with self._lock:
            n = self.in_flight
        running = min(n, self._max_num_seqs)
        return running, n - running

    def kv_usage(self) -> float:
        """Share of the KV cache held: every running request holds its part."""
        return min(1.0, KV_IDLE + KV_PER_REQUEST * self.split()[0])

    def collect(self) -> Iterator[Metric]:
        """The gauge families from the current state."""
        running, waiting = self.split()
        pipeline = [("num_requests_running", "Requests in flight in the pipeline.", running),
                    ("num_requests_waiting", "Requests waiting in the orchestrator queue.", waiting)]
        for name, help_text, value in pipeline:
            family = GaugeMetricFamily(self._prefix + name, help_text, labels=["model_name"])
            family.add_metric([self._model], value)
            yield family
        engine = [("vllm:num_requests_running", "Requests in model execution batches.", running),
                  ("vllm:num_requests_waiting", "Requests waiting to be processed.", waiting),
                  ("vllm:kv_cache_usage_perc", "KV-cache usage. 1 means 100 percent usage.", self.kv_usage())]
        for name, help_text, value in engine:
            family = GaugeMetricFamily(name, help_text, labels=["model_name", "stage", "replica"])
            family.add_metric([self._model, TALKER_STAGE, REPLICA], value)
            yield family


class EngineMetrics:
    """Everything the simulated engine counts, in a registry of its own (served at /metrics)."""

    def __init__(self, config: SimulatorConfig) -> None:
        p, model = config.metric_prefix, config.model_name
        self.registry = CollectorRegistry()
        self.state = _EngineState(p, model, config.max_num_seqs)
        self.registry.register(self.state)
        r = self.registry
        audio = ["model_name", "stage", "replica"]
        self._model = model
        self._success = Counter(p + "requests_success", "Finished requests by reason.",
                                ["model_name", "finished_reason"], registry=r)
        self._fail = Counter(p + "requests_fail", "Failed requests.", ["model_name"], registry=r)
        self._e2e = Histogram(p + "e2e_request_latency_s", "End-to-end request latency.", ["model_name"],
                              buckets=_SECONDS, registry=r)
        self._ttfp = Histogram(p + "audio_ttfp_s", "Time from arrival to the first audio packet.", audio,
                               buckets=_SECONDS, registry=r)
        self._duration = Histogram(p + "audio_duration_s", "Audio content duration.", audio,
                                   buckets=_AUDIO_SECONDS, registry=r)
        self._rtf = Histogram(p + "audio_rtf", "Real-time factor: generation time / audio duration.", audio,
                              buckets=_RTF, registry=r)
        self._frames = Counter(p + "audio_frames", "Audio frames produced.", audio, registry=r)
        self._underrun = Histogram(p + "audio_underrun_s", "Worst player deficit of a streamed request.", audio,
                                   buckets=_FAST, registry=r)
        self._continuity = Counter(p + "audio_continuity_ok", "Streams whose worst underrun stayed below "
                                   "threshold_ms.", [*audio, "threshold_ms"], registry=r)
        self._skipped = Counter(p + "audio_skipped_requests", "Requests that produced no audio, by reason.",
                                [*audio, "reason"], registry=r)
        self._vllm_success = Counter("vllm:request_success", "Finished requests by reason.",
                                     ["model_name", "stage", "replica", "finished_reason"], registry=r)
        self._preemptions = Counter("vllm:num_preemptions", "Cumulative number of preemptions.",
                                    ["model_name", "stage", "replica"], registry=r)
        self._tokens = Counter("vllm:generation_tokens", "Number of generation tokens processed.",
                               ["model_name", "stage", "replica"], registry=r)
        self._audio_labels = (model, AUDIO_STAGE, REPLICA)
        self._talker_labels = (model, TALKER_STAGE, REPLICA)
        # Families with labels appear only once touched: create the series a rule reads at 0.
        self._success.labels(model, "stop")
        self._fail.labels(model)
        self._vllm_success.labels(*self._talker_labels, "stop")
        self._preemptions.labels(*self._talker_labels)
        self._tokens.labels(*self._talker_labels)
        self._continuity.labels(*self._audio_labels, CONTINUITY_THRESHOLD_MS)
        self._skipped.labels(*self._audio_labels, "no_audio_data")

    def admit(self) -> None:
        """A request enters the engine; a full KV cache preempts running work to make room."""
        if self.state.kv_usage() > PREEMPT_ABOVE:
            self._preemptions.labels(*self._talker_labels).inc()
        self.state.change(+1)

    def release(self) -> None:
        """A request leaves the engine (finished, failed or abandoned)."""
        self.state.change(-1)

    def finished(self, seconds: float, audio_seconds: float, frames: int) -> None:
        """A request that produced audio: latency, duration, RTF, frames, success."""
        self._success.labels(self._model, "stop").inc()
        self._vllm_success.labels(*self._talker_labels, "stop").inc()
        self._e2e.labels(self._model).observe(seconds)
        self._duration.labels(*self._audio_labels).observe(audio_seconds)
        self._rtf.labels(*self._audio_labels).observe(seconds / audio_seconds if audio_seconds else 0.0)
        self._frames.labels(*self._audio_labels).inc(frames)

    def generated(self, audio_seconds: float) -> None:
        """The talker produced the tokens of `audio_seconds` of audio (progress, even before a request ends)."""
        self._tokens.labels(*self._talker_labels).inc(round(audio_seconds * TOKENS_PER_AUDIO_SECOND))

    def failed(self) -> None:
        """A request that ended in an error."""
        self._fail.labels(self._model).inc()

    def aborted(self) -> None:
        """A streamed request the client left before its end (vLLM counts it as finished by abort)."""
        self._success.labels(self._model, "abort").inc()
        self._vllm_success.labels(*self._talker_labels, "abort").inc()

    def skipped(self, reason: str) -> None:
        """A request the model answered without audio (the silent-loss counter; count its failure apart)."""
        self._skipped.labels(*self._audio_labels, reason).inc()

    def streamed(self, stats: StreamStats) -> None:
        """The streaming-only families: first packet, worst underrun, continuity."""
        self._ttfp.labels(*self._audio_labels).observe(stats.first_packet_seconds)
        self._underrun.labels(*self._audio_labels).observe(stats.worst_underrun_seconds)
        if stats.worst_underrun_seconds * 1000 < int(CONTINUITY_THRESHOLD_MS):
            self._continuity.labels(*self._audio_labels, CONTINUITY_THRESHOLD_MS).inc()

    def exposition(self) -> bytes:
        """The Prometheus text of every family."""
        return generate_latest(self.registry)
