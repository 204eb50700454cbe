"""The stand-in TTS service as separate processes: health, synthesis, faults, logs, signals."""

from __future__ import annotations

import json
import os
import re
import signal
import socket

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tts_sentinel.exporter.audio.wav import decode_wav

SEED_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} \[(INFO|WARNING|ERROR|CRITICAL)\] .+$")
SEED_TEXT = "你好,世界。Hello, world."


def tts(sim, text: str = SEED_TEXT, timeout: float = 10) -> httpx.Response:
    return httpx.post(sim.api + "/tts", json={"text": text, "lang": "zh", "speaker": "Vivian"}, timeout=timeout)


def test_health_says_ok_in_the_seed_format(simulator):
    r = httpx.get(simulator.web + "/health", timeout=5)
    assert r.status_code == 200
    # The seed's L1 script greps for this literal string.
    assert '"status":"ok"' in r.text
    assert httpx.get(simulator.api + "/health", timeout=5).json() == {"status": "ok"}


def test_tts_returns_24k_mono_wav_that_grows_with_the_text(simulator):
    short = decode_wav(tts(simulator, "你好").content)
    long = decode_wav(tts(simulator, SEED_TEXT * 3).content)
    assert short.sample_rate == long.sample_rate == 24000
    assert long.duration_seconds > 2.5 * short.duration_seconds
    assert decode_wav(tts(simulator).content).duration_seconds > 1.2


def test_every_log_line_has_the_seed_format(simulator):
    tts(simulator)
    simulator.fault("oom")
    simulator.wait_for(lambda: "silent for" in simulator.log("health.log"), "the health log's silent line")
    for name in ("webui.log", "inference.log", "health.log"):
        lines = simulator.log(name).splitlines()
        assert lines, name
        bad = [line for line in lines if not SEED_LINE.match(line)]
        assert not bad, (name, bad[:3])


def test_hang_blocks_health_but_admin_still_answers(simulator):
    assert simulator.fault("hang", "web").status_code == 200
    with pytest.raises(httpx.TimeoutException):
        httpx.get(simulator.web + "/health", timeout=0.5)
    assert httpx.get(simulator.web + "/admin/fault", timeout=2).json()["fault"] == "hang"
    httpx.delete(simulator.web + "/admin/fault", timeout=2)
    assert httpx.get(simulator.web + "/health", timeout=2).status_code == 200


def test_error500_and_forwarding_of_admin_between_ports(simulator):
    # Posted to the API port, meant for the web front: forwarded.
    r = simulator.fault("error500", component="web", port="api")
    assert r.json()["component"] == "web"
    assert httpx.get(simulator.web + "/health", timeout=2).status_code == 500
    assert httpx.get(simulator.api + "/health", timeout=2).status_code == 200
    simulator.fault("none", component="web")
    assert httpx.get(simulator.web + "/health", timeout=2).status_code == 200


def test_silent_gives_all_zero_audio_and_the_seed_health_line(simulator):
    simulator.fault("silent")
    audio = decode_wav(tts(simulator).content)
    assert audio.duration_seconds > 1.2
    assert not audio.samples.any()
    simulator.wait_for(lambda: "Health check failed: audio output silent for" in simulator.log("health.log"), "silent line")


@pytest.mark.parametrize(
    ("fault", "line"),
    [
        ("oom", "[ERROR] [CUDA] Out of memory on device 0"),
        ("unicode", "[ERROR] Text preprocessing failed: invalid unicode sequence at pos 17"),
        ("underflow", "Stream buffer underflow: expected 2048 samples, got 0"),
        ("load_timeout", "[ERROR] Model load timeout > 15s"),
    ],
)
def test_log_faults_write_the_seed_lines(simulator, fault, line):
    simulator.fault(fault)
    simulator.wait_for(lambda: line in simulator.log("inference.log"), f"{line!r} in inference.log")


def test_oom_then_synthesis_fails(simulator):
    simulator.fault("oom")
    assert tts(simulator).status_code == 500


def test_unicode_in_the_input_puts_preprocessing_into_silent_protection_mode(simulator):
    assert tts(simulator, "你好\u200b世界").status_code == 200
    assert "invalid unicode sequence at pos 2" in simulator.log("inference.log")
    assert not decode_wav(tts(simulator).content).samples.any()


def test_unknown_fault_is_refused_with_the_list(simulator):
    r = simulator.fault("melt")
    assert r.status_code == 400
    assert "known faults" in r.json()["error"]
    assert simulator.fault("silent", component="web").status_code == 400


def test_crash_exits_non_zero_and_a_restart_clears_the_fault(simulator):
    simulator.fault("silent")
    simulator.fault("crash")
    proc = simulator.procs["inference"]
    assert proc.wait(10) != 0
    simulator.start("inference")
    assert decode_wav(tts(simulator).content).samples.any()


def test_sigusr1_reloads_the_web_front_and_clears_a_hang(simulator):
    simulator.fault("hang", "web")
    os.kill(simulator.procs["web"].pid, signal.SIGUSR1)
    simulator.wait_for(lambda: "model stays loaded" in simulator.log("webui.log"), "reload line")
    assert httpx.get(simulator.web + "/health", timeout=2).json() == {"status": "ok"}
    assert simulator.procs["web"].poll() is None


def test_bad_requests_get_clear_errors_and_the_process_keeps_running(simulator):
    r = httpx.post(simulator.api + "/tts", content=b"{not json", timeout=5)
    assert r.status_code == 400 and "not JSON" in r.json()["error"]
    assert httpx.post(simulator.api + "/tts", json={"text": ""}, timeout=5).status_code == 400
    assert tts(simulator).status_code == 200


def test_openai_protocol(start_sim):
    sim = start_sim(protocol="openai", api_key="s3cret")
    health = httpx.get(sim.api + "/health", timeout=5)
    assert health.status_code == 200 and health.content == b""
    auth = {"Authorization": "Bearer s3cret"}
    body = {"input": SEED_TEXT, "voice": "Vivian", "language": "Chinese", "response_format": "wav"}
    assert httpx.post(sim.api + "/v1/audio/speech", json=body, timeout=10).status_code == 401
    r = httpx.post(sim.api + "/v1/audio/speech", json=body, headers=auth, timeout=10)
    assert decode_wav(r.content).sample_rate == 24000
    bad = httpx.post(sim.api + "/v1/audio/speech", json={**body, "voice": "Nobody"}, headers=auth, timeout=5)
    assert bad.status_code == 400 and "message" in json.loads(bad.content)["error"]
    voices = httpx.get(sim.api + "/v1/audio/voices", headers=auth, timeout=5).json()["voices"]
    assert "Vivian" in voices
    sim.fault("oom")
    assert httpx.get(sim.api + "/health", timeout=5).status_code == 503


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.one_of(st.binary(max_size=64), st.dictionaries(st.text(max_size=5), st.text(max_size=20)).map(
    lambda d: json.dumps(d).encode())))
def test_any_body_gets_an_answer_and_the_service_lives_on(simulator, body):
    r = httpx.post(simulator.api + "/tts", content=body, timeout=10)
    assert r.status_code in (200, 400)
    if r.status_code == 400:
        assert r.json()["error"]


def test_bad_content_length_is_refused(simulator):
    with socket.create_connection(("127.0.0.1", int(simulator.api.rsplit(":", 1)[1])), timeout=5) as s:
        s.sendall(b"POST /tts HTTP/1.1\r\nHost: x\r\nContent-Length: lots\r\n\r\n")
        assert b" 400 " in s.recv(1000).split(b"\r\n", 1)[0] + b" "
    assert tts(simulator).status_code == 200
