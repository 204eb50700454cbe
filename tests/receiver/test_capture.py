"""The capture step: the exporter's probes run once before the restart (their failing clips become
evidence), bounded in time, and never fail the job."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace

from support import free_port

from tests.receiver.conftest import alert, payload, receiver_config
from tts_sentinel.receiver.config import Step
from tts_sentinel.receiver.steps import step_action


def test_capture_probes_before_the_restart_and_the_job_goes_on(supervisor, l1_green_l2_red, make_receiver):
    medium = [{"action": "capture", "modules": ["health", "synthesis"]},
              {"action": "stop", "component": "inference"}, {"action": "start", "component": "inference"},
              {"action": "verify", "module": "health"}]
    receiver = make_receiver(receiver_config(supervisor, l1_green_l2_red, tiers={"medium": medium}))
    job = receiver.wait_job(receiver.post(payload(alert("TtsAudioSilent", tier="medium"))).json()["new_jobs"][0])
    assert job["status"] == "succeeded", job
    capture = job["steps"][0]
    assert capture["ok"] and capture["step"].startswith("capture evidence: health, synthesis")
    assert capture["output"] == "health green; synthesis red: the exporter keeps the failing clips"
    assert capture["capture"] == {"health": "green", "synthesis": "red"}
    calls = l1_green_l2_red.calls
    assert sorted(calls[:2]) == ["health", "synthesis"] and calls[2:] == ["health"], "captured first, verified after"


def ctx(exporter_url: str) -> SimpleNamespace:
    return SimpleNamespace(config=SimpleNamespace(exporter_url=exporter_url))


def test_an_unreachable_exporter_is_said_and_fails_nothing():
    capture = step_action("capture")
    outcome = capture.run(Step(action="capture", modules=["synthesis"]), ctx(f"http://127.0.0.1:{free_port()}"))
    assert outcome.output.startswith("synthesis not run (ConnectError)") and "no probe failed" in outcome.output


def test_capture_waits_at_most_its_seconds_for_a_hung_exporter():
    release = threading.Event()

    class Slow(BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def do_GET(self):
            release.wait(30)  # a probe of a hung service

    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Slow)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        step = Step(action="capture", modules=["synthesis", "semantic", "quality"], seconds=0.5)
        outcome = step_action("capture").run(step, ctx(f"http://127.0.0.1:{server.server_address[1]}"))
    finally:
        release.set()
        server.shutdown()
        server.server_close()
    # every probe is given the step's seconds, not its own timeout, and they run side by side
    assert outcome.extra["capture"] == dict.fromkeys(["synthesis", "semantic", "quality"], "not run (ReadTimeout)")
