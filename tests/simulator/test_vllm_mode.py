"""The simulator in vLLM-Omni mode: the engine's metrics, streamed speech (SSE, raw WAV, WebSocket) and its faults.

Served in-process on free ports; the client side is plain httpx, the `websockets` client
and a few lines of SSE parsing here, never the exporter's streaming prober it is tested with.
"""

from __future__ import annotations

import base64
import json
import threading
import time

import httpx
import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families
from support import free_port
from websockets.sync.client import connect

from tts_sentinel.exporter.audio.wav import STREAMING_SIZE, decode_wav
from tts_sentinel.simulator.config import SimulatorConfig
from tts_sentinel.simulator.runtime import InProcessSimulator

TEXT = "你好,世界。Hello, world."
MODEL = "Qwen3-TTS-12Hz-1.7B-CustomVoice"


@pytest.fixture
def omni(tmp_path):
    """A vLLM-Omni-mode simulator factory; every simulator made is stopped after the test."""
    running = []

    def make(**overrides) -> InProcessSimulator:
        config = SimulatorConfig(web_port=free_port(), api_port=free_port(), log_dir=tmp_path / "logs",
                                 protocol="openai", hang_seconds=20, **overrides)
        sim = InProcessSimulator(config).__enter__()
        running.append(sim)
        return sim

    yield make
    for sim in running:
        sim.__exit__(None, None, None)


def fault(sim, name: str) -> None:
    httpx.post(sim.api_url + "/admin/fault", json={"fault": name}, timeout=5).raise_for_status()


def metrics(sim) -> dict[str, tuple[str, dict[tuple[tuple[str, str], ...], float]]]:
    """family name -> (type, {sorted labels of each sample named like the family(_total): value})."""
    text = httpx.get(sim.api_url + "/metrics", timeout=5).text
    out = {}
    for family in text_string_to_metric_families(text):
        values = {tuple(sorted(s.labels.items())): s.value for s in family.samples
                  if s.name in (family.name, family.name + "_total", family.name + "_count")}
        out[family.name] = (family.type, values)
    return out


def value(sim, family: str, **labels) -> float:
    kind, samples = metrics(sim)[family]
    return sum(v for key, v in samples.items() if labels.items() <= dict(key).items())


def speech(sim, timeout: float = 10, **extra) -> httpx.Response:
    body = {"input": TEXT, "voice": "Vivian", "language": "Chinese", **extra}
    return httpx.post(sim.api_url + "/v1/audio/speech", json=body, timeout=timeout)


def sse_events(sim, **extra) -> list[tuple[str, dict, float]]:
    """(event name, data, arrival second) of every event of a streamed request."""
    events, name, started = [], "", time.monotonic()
    body = {"input": TEXT, "voice": "Vivian", "stream": True, **extra}
    with httpx.stream("POST", sim.api_url + "/v1/audio/speech", json=body, timeout=30) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        for line in r.iter_lines():
            if line.startswith("event:"):
                name = line[6:].strip()
            elif line.startswith("data:"):
                events.append((name, json.loads(line[5:]), time.monotonic() - started))
    return events


def test_metrics_have_the_engine_names_and_types(omni):
    sim = omni()
    assert speech(sim).status_code == 200
    families = metrics(sim)
    expected = {
        "vllm_omni:num_requests_running": "gauge", "vllm_omni:num_requests_waiting": "gauge",
        "vllm_omni:requests_success": "counter", "vllm_omni:e2e_request_latency_s": "histogram",
        "vllm_omni:audio_ttfp_s": "histogram", "vllm_omni:audio_rtf": "histogram",
        "vllm_omni:audio_duration_s": "histogram", "vllm_omni:audio_underrun_s": "histogram",
        "vllm_omni:audio_continuity_ok": "counter", "vllm_omni:audio_skipped_requests": "counter",
        "vllm_omni:audio_frames": "counter",
        "vllm:num_requests_running": "gauge", "vllm:num_requests_waiting": "gauge",
        "vllm:kv_cache_usage_perc": "gauge", "vllm:num_preemptions": "counter", "vllm:request_success": "counter",
        "vllm:generation_tokens": "counter",
    }
    assert {name: families[name][0] for name in expected} == expected
    assert value(sim, "vllm_omni:requests_success", finished_reason="stop") == 1
    assert value(sim, "vllm_omni:audio_rtf") == 1  # histogram count: one request
    assert value(sim, "vllm:generation_tokens") > 12
    # streaming-only families stay empty for a plain request, as on the real server
    assert value(sim, "vllm_omni:audio_ttfp_s") == 0
    # the series rules read exist before the first event
    assert value(sim, "vllm:num_preemptions") == 0
    assert value(sim, "vllm_omni:audio_skipped_requests", reason="no_audio_data") == 0


def test_older_releases_prefix_is_available(omni):
    sim = omni(metric_prefix="vllm:omni_")
    families = metrics(sim)
    assert "vllm:omni_num_requests_running" in families and "vllm_omni:num_requests_running" not in families
    assert "vllm:kv_cache_usage_perc" in families


def test_metrics_are_served_only_in_vllm_omni_mode(tmp_path):
    config = SimulatorConfig(web_port=free_port(), api_port=free_port(), log_dir=tmp_path / "logs")
    with InProcessSimulator(config) as sim:
        assert httpx.get(sim.api_url + "/metrics", timeout=5).status_code == 404


def test_sse_stream_carries_base64_pcm_deltas_then_done(omni):
    sim = omni()
    events = sse_events(sim, response_format="pcm")
    names = [name for name, _, _ in events]
    assert names[-1] == "speech.audio.done" and set(names[:-1]) == {"speech.audio.delta"}
    assert all(data["type"] == name for name, data, _ in events)
    pcm = b"".join(base64.b64decode(data["audio"]) for name, data, _ in events if name.endswith("delta"))
    samples = np.frombuffer(pcm, dtype="<i2")
    assert len(samples) / 24000 > 1.2 and np.abs(samples).max() > 1000
    assert len(events) > 5  # chunks, not one blob
    assert value(sim, "vllm_omni:audio_ttfp_s") == 1 and value(sim, "vllm_omni:audio_continuity_ok") == 1


def test_raw_audio_stream_is_a_wav_with_unknown_sizes(omni):
    sim = omni()
    r = speech(sim, stream=True, stream_format="audio", response_format="wav")
    assert r.status_code == 200 and r.headers.get("transfer-encoding") == "chunked"
    assert int.from_bytes(r.content[4:8], "little") == STREAMING_SIZE
    audio = decode_wav(r.content)
    assert audio.sample_rate == 24000 and audio.duration_seconds > 1.2


def test_streaming_refuses_formats_it_cannot_stream(omni):
    sim = omni()
    assert speech(sim, stream=True, response_format="mp3").status_code == 400
    assert speech(sim, stream=True, stream_format="ogg").status_code == 400


def ws_utterance(sim, text: str = TEXT, stream_audio: bool = True, voice: str = "Vivian") -> list:
    """Every message answered to one utterance (JSON as dicts, audio as bytes)."""
    messages = []
    url = sim.api_url.replace("http://", "ws://") + "/v1/audio/speech/stream"
    with connect(url, proxy=None, compression=None, open_timeout=5) as ws:
        ws.send(json.dumps({"type": "session.config", "voice": voice, "stream_audio": stream_audio}))
        for part in (text[:5], text[5:]):
            ws.send(json.dumps({"type": "input.text", "text": part}))
        ws.send(json.dumps({"type": "input.done"}))
        while True:
            message = ws.recv(timeout=10)
            messages.append(message if isinstance(message, bytes) else json.loads(message))
            if isinstance(messages[-1], dict) and messages[-1]["type"] in ("session.done", "error"):
                break
        ws.send(json.dumps({"type": "session.close"}))
    return messages


def test_websocket_streams_pcm_frames_between_start_and_done(omni):
    sim = omni()
    messages = ws_utterance(sim)
    start, *frames, done, session = messages
    assert start["type"] == "audio.start" and start["sample_rate"] == 24000 and start["sentence_text"] == TEXT
    assert len(frames) > 5 and all(isinstance(f, bytes) for f in frames)
    assert done == {"type": "audio.done", "utterance_index": 0, "sentence_index": 0,
                    "total_bytes": sum(map(len, frames)), "error": False}
    assert session["type"] == "session.done" and session["total_sentences"] == 1
    assert len(b"".join(frames)) / 2 / 24000 > 1.2
    one = ws_utterance(sim, stream_audio=False)
    assert sum(isinstance(m, bytes) for m in one) == 1


def test_websocket_reports_an_unknown_voice_as_an_error_message(omni):
    sim = omni()
    assert ws_utterance(sim, voice="Nobody")[-1]["type"] == "error"


def test_hung_engine_accepts_requests_completes_none_and_stays_healthy(omni):
    sim = omni(max_num_seqs=2)
    fault(sim, "hung_engine")
    assert httpx.get(sim.api_url + "/health", timeout=2).status_code == 200
    for _ in range(3):
        with pytest.raises(httpx.TimeoutException):
            speech(sim, timeout=0.5)
    assert value(sim, "vllm_omni:num_requests_running") == 2
    assert value(sim, "vllm_omni:num_requests_waiting") == 1
    assert value(sim, "vllm:num_requests_running") == 2
    assert value(sim, "vllm:kv_cache_usage_perc") > 0.4
    assert value(sim, "vllm_omni:requests_success") == 0
    assert value(sim, "vllm:generation_tokens") == 0  # no progress at all: what tells it from a long request
    sim.inference.self_check()  # the self-check thread's tick: the engine's stall line
    assert "No available shared memory broadcast block found in 60 seconds" in (
        sim.config.log_dir / "inference.log").read_text()
    fault(sim, "none")  # held requests go on once the engine moves again
    deadline = time.monotonic() + 10
    while value(sim, "vllm_omni:num_requests_running") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert value(sim, "vllm_omni:num_requests_running") == 0


def test_hung_engine_sends_stream_headers_then_nothing(omni):
    sim = omni()
    fault(sim, "hung_engine")
    body = {"input": TEXT, "voice": "Vivian", "stream": True}
    timeout = httpx.Timeout(5, read=0.5)
    with httpx.stream("POST", sim.api_url + "/v1/audio/speech", json=body, timeout=timeout) as r:
        assert r.status_code == 200
        with pytest.raises(httpx.ReadTimeout):
            next(r.iter_lines())


def test_a_full_kv_cache_preempts(omni):
    sim = omni(max_num_seqs=8)
    fault(sim, "hung_engine")
    def held_request() -> None:
        try:
            speech(sim, timeout=1)
        except httpx.TimeoutException:
            pass

    threads = [threading.Thread(target=held_request) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert value(sim, "vllm:kv_cache_usage_perc") == 1.0
    assert value(sim, "vllm:num_preemptions") >= 1


def test_underrun_streams_slower_than_real_time(omni):
    sim = omni(underrun_rtf=1.5)
    fault(sim, "underrun")
    events = sse_events(sim, response_format="pcm")
    deltas = [(at, len(base64.b64decode(d["audio"])) / 2 / 24000) for n, d, at in events if n.endswith("delta")]
    audio_seconds = sum(s for _, s in deltas)
    # the last chunk arrives long after a listener who started with the first one ran out
    assert deltas[-1][0] - deltas[0][0] > (audio_seconds - deltas[-1][1]) + 0.3
    assert value(sim, "vllm_omni:audio_underrun_s") == 1
    assert value(sim, "vllm_omni:audio_continuity_ok") == 0
    kind, buckets = metrics(sim)["vllm_omni:audio_underrun_s"]
    assert kind == "histogram"


def test_runaway_streams_far_more_audio_than_the_text_needs(omni):
    sim = omni(stream_rtf=0.0)
    normal = speech(sim, stream=True, stream_format="audio", response_format="wav")
    fault(sim, "runaway")
    runaway = speech(sim, timeout=30, stream=True, stream_format="audio", response_format="wav")
    assert decode_wav(runaway.content).duration_seconds > 4 * decode_wav(normal.content).duration_seconds


def test_engine_fatal_writes_the_markers_and_the_dead_engine_answers_503(omni):
    sim = omni()
    fault(sim, "engine_fatal")
    log = (sim.config.log_dir / "inference.log").read_text()
    for marker in ("EngineCore encountered a fatal error.", "Engine core proc EngineCore_DP0 died unexpectedly",
                   "[StagePool] Stage 0 replica 0 shut down"):
        assert marker in log
    assert httpx.get(sim.api_url + "/health", timeout=2).status_code == 503
    r = speech(sim)
    assert r.status_code == 500 and "EngineCore encountered an issue" in r.json()["error"]["message"]
    assert value(sim, "vllm_omni:requests_fail") == 1


def test_no_audio_answers_400_and_counts_a_skipped_request(omni):
    sim = omni()
    fault(sim, "no_audio")
    r = speech(sim)
    assert r.status_code == 400
    assert r.json()["error"] == {"message": "TTS model did not produce audio output.", "type": "BadRequestError",
                                 "param": None, "code": 400}
    assert "TTS model did not produce audio output." in (sim.config.log_dir / "inference.log").read_text()
    assert value(sim, "vllm_omni:audio_skipped_requests", reason="no_audio_data") == 1
