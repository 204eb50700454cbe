"""Streaming prober: against the simulator in vLLM-Omni mode over SSE, raw audio and WebSocket, and its
timeline arithmetic on made-up arrivals."""

from __future__ import annotations

import base64
import json

import httpx
import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from pydantic import ValidationError

from tts_sentinel.exporter.probes.config import ProbesConfig, StreamingProbeConfig
from tts_sentinel.exporter.probes.scheduler import ProbeScheduler
from tts_sentinel.exporter.probes.streaming import (
    REASONS,
    StreamError,
    StreamReader,
    StreamRecord,
    probe_streaming,
    read_sse_events,
)
from tts_sentinel.simulator.wavfile import write_wav

TRANSPORTS = ["sse", "audio", "websocket"]


def streaming(sim, **kw) -> StreamingProbeConfig:
    request = {"protocol": "openai", "url": sim.api_url + "/v1/audio/speech", "timeout_seconds": 20,
               "bearer_token": "tok"}
    return StreamingProbeConfig(enabled=True, request=request, **{"transports": TRANSPORTS, **kw})


def gauges(result, transport: str) -> dict[str, float]:
    return {m.name: m.value for m in result.gauges if m.labels == {"transport": transport}}


def fault(sim, name: str) -> None:
    httpx.post(sim.api_url + "/admin/fault", json={"fault": name}, timeout=5).raise_for_status()


def test_healthy_streams_pass_on_every_transport(openai_sim):
    result = probe_streaming(streaming(openai_sim))
    assert result.success, result.detail
    for transport in TRANSPORTS:
        g = gauges(result, transport)
        assert g["tts_streaming_success"] == 1
        assert 0 < g["tts_streaming_first_audio_seconds"] < 5
        assert 1.2 < g["tts_streaming_audio_seconds"] < g["tts_streaming_max_audio_seconds"]
        assert g["tts_streaming_chunks"] > 5
        assert g["tts_streaming_underrun_seconds"] < 0.3
        assert g["tts_streaming_realtime_factor"] < 1


def test_a_wav_stream_is_read_through_its_header(openai_sim):
    result = probe_streaming(streaming(openai_sim, response_format="wav", transports=["sse", "audio"]))
    assert result.success, result.detail


def test_underrun_is_named_per_transport(make_sim):
    sim = make_sim(protocol="openai", underrun_rtf=1.5)
    fault(sim, "underrun")
    result = probe_streaming(streaming(sim, transports=["sse", "websocket"]))
    assert result.reasons == ["underrun", "underrun"], result.detail
    for transport in ("sse", "websocket"):
        g = gauges(result, transport)
        assert g["tts_streaming_underrun_seconds"] > 0.3
        assert g["tts_streaming_late_chunks"] > 0
        assert g["tts_streaming_realtime_factor"] > 1


def test_runaway_stops_reading_at_the_bound(openai_sim):
    fault(openai_sim, "runaway")
    result = probe_streaming(streaming(openai_sim))
    assert result.reasons == ["too_long"] * 3, result.detail
    for transport in TRANSPORTS:
        g = gauges(result, transport)
        # reading ended one chunk past the bound, not at the end of a minute of audio
        assert g["tts_streaming_max_audio_seconds"] < g["tts_streaming_audio_seconds"] < (
            g["tts_streaming_max_audio_seconds"] + 0.5)
    assert "stopped reading" in result.detail


def test_hung_engine_times_out_waiting_for_the_first_audio(openai_sim):
    fault(openai_sim, "hung_engine")
    assert httpx.get(openai_sim.api_url + "/health", timeout=2).status_code == 200
    result = probe_streaming(streaming(openai_sim, stall_timeout_seconds=0.5))
    assert result.reasons == ["timeout"] * 3, result.detail
    assert gauges(result, "sse")["tts_streaming_first_audio_seconds"] == -1


@pytest.mark.parametrize(("name", "reasons"), [
    ("silent", ["silent"] * 3),
    ("no_audio", ["http_status", "http_status", "stream_error"]),
    ("engine_fatal", ["http_status", "http_status", "stream_error"]),
])
def test_faults_give_their_reasons(openai_sim, name, reasons):
    fault(openai_sim, name)
    result = probe_streaming(streaming(openai_sim))
    assert result.reasons == reasons, result.detail
    failures = {(m.labels["transport"], m.labels["reason"]) for m in result.counts}
    assert failures == set(zip(TRANSPORTS, reasons, strict=True))


def test_wrong_token_and_no_server_are_told_apart(openai_sim, port):
    config = streaming(openai_sim)
    config.request.bearer_token = "wrong"
    assert probe_streaming(config).reasons == ["http_status"] * 3
    gone = StreamingProbeConfig(enabled=True, request={"protocol": "openai", "url": f"http://127.0.0.1:{port}/v1/x"})
    assert probe_streaming(gone).reasons == ["connection"] * 2


def test_exported_like_the_other_probes(openai_sim):
    probes = ProbesConfig(health={"enabled": False}, modules={"stream": streaming(openai_sim, transports=["sse"])})
    registry = CollectorRegistry()
    scheduler = ProbeScheduler(probes, registry)
    result, seconds = scheduler.run_once("stream")
    scheduler.collector.record("stream", result, seconds)
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for f in text_string_to_metric_families(generate_latest(registry).decode()) for s in f.samples}
    assert samples[("tts_probe_success", (("probe", "stream"),))] == 1
    assert samples[("tts_streaming_success", (("probe", "stream"), ("transport", "sse")))] == 1
    # every reason exists at 0 from the start, so increase() sees the first failure
    assert samples[("tts_probe_failures_total", (("probe", "stream"), ("reason", "underrun")))] == 0
    success, body = scheduler.probe_now("stream")
    assert success and b'tts_streaming_first_audio_seconds{probe="stream",transport="sse"}' in body


def test_config_needs_the_openai_protocol_and_derives_the_websocket_url():
    with pytest.raises(ValidationError, match="protocol: openai"):
        StreamingProbeConfig(request={"protocol": "seed", "url": "http://h/tts"})
    with pytest.raises(ValidationError, match="repeat"):
        StreamingProbeConfig(transports=["sse", "sse"])
    assert StreamingProbeConfig(request={"protocol": "openai", "url": "https://h:8091/v1/audio/speech"}).ws_url() == (
        "wss://h:8091/v1/audio/speech/stream")
    assert StreamingProbeConfig(websocket_url="ws://other/x").ws_url() == "ws://other/x"
    assert set(REASONS) >= {"timeout", "stalled", "underrun", "too_long", "slow_first_audio"}


# -- the arithmetic, on made-up arrival times ----------------------------------------------------

def record_of(arrivals: list[tuple[float, float]]) -> StreamRecord:
    record = StreamRecord(started=0.0, pcm_rate=1000)
    for at, seconds in arrivals:
        record.add(b"\0\0" * int(seconds * 1000), at)
    return record


def test_a_stream_ahead_of_the_listener_never_underruns():
    record = record_of([(0.5, 0.2), (0.55, 0.2), (0.6, 0.2), (0.9, 0.2)])
    assert record.first_audio_seconds() == 0.5
    assert record.worst_underrun_seconds() == 0.0
    assert record.late_chunks() == 1  # 0.3 s after a 0.2 s chunk: late, but the buffer still covers it


def test_a_stream_slower_than_real_time_underruns_by_its_worst_deficit():
    record = record_of([(0.0, 0.2), (0.3, 0.2), (0.6, 0.2), (0.9, 0.2)])
    assert record.worst_underrun_seconds() == pytest.approx(0.3)
    assert record.late_chunks() == 3


def test_a_wav_header_split_over_payloads_sets_the_byte_rate():
    wav = write_wav([0.1] * 16000, 16000, streaming_header=True)
    record = StreamRecord(started=0.0, pcm_rate=24000)
    record.add(wav[:20], 0.1)
    record.add(wav[20:50], 0.2)
    record.add(wav[50:], 0.3)
    assert record.chunks[0][0] == 0.2 and record.audio_seconds == pytest.approx(1.0)
    audio = record.audio()
    assert audio.sample_rate == 16000 and audio.duration_seconds == pytest.approx(1.0)


def sse(kind: str, **data) -> list[str]:
    return [f"event: {kind}", "data: " + json.dumps({"type": kind, **data}), ""]


def test_an_event_stream_that_ends_early_is_stalled_or_timed_out():
    reader = StreamReader(StreamingProbeConfig())
    with pytest.raises(StreamError) as empty:
        read_sse_events(reader, iter([]))
    assert empty.value.reason == "timeout"
    audio = base64.b64encode(b"\1\0" * 2400).decode()
    with pytest.raises(StreamError) as cut:
        read_sse_events(reader, iter(sse("speech.audio.delta", audio=audio)))
    assert cut.value.reason == "stalled"
    with pytest.raises(StreamError) as bad:
        read_sse_events(reader, iter(["data: {not json", ""]))
    assert bad.value.reason == "protocol"
    with pytest.raises(StreamError) as error:
        read_sse_events(reader, iter(sse("speech.audio.error", error={"message": "boom"})))
    assert error.value.reason == "stream_error" and "boom" in str(error.value)
