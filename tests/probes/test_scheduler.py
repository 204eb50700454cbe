"""ProbeScheduler: scheduled runs into the shared registry, probe_now with a fresh one."""

from __future__ import annotations

import time

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from tts_sentinel.exporter.probes.config import HealthProbeConfig, ProbesConfig
from tts_sentinel.exporter.probes.scheduler import ProbeScheduler


def samples(text: bytes | str) -> dict[tuple[str, tuple], float]:
    if isinstance(text, bytes):
        text = text.decode()
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def wait_until(condition, what: str, deadline_s: float = 15.0):
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def health_config(url: str) -> ProbesConfig:
    return ProbesConfig(health=HealthProbeConfig(url=url, interval_seconds=0.2, timeout_seconds=0.5))


def test_failure_reasons_exist_at_zero_before_any_run(sim):
    registry = CollectorRegistry()
    scheduler = ProbeScheduler(health_config(sim.web_url + "/health"), registry)
    s = samples(generate_latest(registry))
    assert s[("tts_probe_failures_total", (("probe", "health"), ("reason", "timeout")))] == 0
    assert scheduler.module_names() == ["health"]


def test_scheduled_health_goes_red_on_hang_and_green_after(sim):
    registry = CollectorRegistry()
    scheduler = ProbeScheduler(health_config(sim.web_url + "/health"), registry)
    scheduler.start()
    try:
        key = ("tts_probe_success", (("probe", "health"),))
        wait_until(lambda: samples(generate_latest(registry)).get(key) == 1.0, "first green run")
        sim.web.set_fault("hang")
        wait_until(lambda: samples(generate_latest(registry)).get(key) == 0.0, "red on hang")
        timeouts = ("tts_probe_failures_total", (("probe", "health"), ("reason", "timeout")))
        assert samples(generate_latest(registry))[timeouts] >= 1
        sim.web.set_fault("none")
        wait_until(lambda: samples(generate_latest(registry)).get(key) == 1.0, "green after clearing")
        assert samples(generate_latest(registry))[("tts_probe_duration_seconds", (("probe", "health"),))] > 0
    finally:
        scheduler.stop()


def test_probe_now_uses_a_fresh_registry(sim):
    registry = CollectorRegistry()
    scheduler = ProbeScheduler(health_config(sim.web_url + "/health"), registry)
    sim.web.set_fault("error500")
    ok, body = scheduler.probe_now("health")
    assert not ok
    s = samples(body)
    assert s[("tts_probe_success", (("probe", "health"),))] == 0
    assert s[("tts_probe_failures_total", (("probe", "health"), ("reason", "http_status")))] == 1
    # The shared registry saw nothing of it.
    assert ("tts_probe_success", (("probe", "health"),)) not in samples(generate_latest(registry))
    with pytest.raises(KeyError):
        scheduler.probe_now("nope")


def test_a_fresh_probe_waits_out_a_run_that_started_before_it(tmp_path):
    """The capture before a restart must hear the fault, not a scheduled run begun while all was well."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    first_arrived, release = threading.Event(), threading.Event()
    answered: list[int] = []

    class Health(BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def do_GET(self):
            first = not answered
            answered.append(200 if first else 500)
            if first:  # the run that started while healthy, slow to finish
                first_arrived.set()
                release.wait(10)
            body = b'{"status":"ok"}' if first else b"broken"
            self.send_response(answered[-1] if not first else 200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Health)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    config = ProbesConfig(health=HealthProbeConfig(url=f"http://127.0.0.1:{server.server_address[1]}/health",
                                                   interval_seconds=3600, timeout_seconds=15))
    scheduler = ProbeScheduler(config, CollectorRegistry())
    verdicts: dict[str, bool] = {}

    def probe(name: str, fresh: bool) -> None:
        verdicts[name] = scheduler.probe_now("health", fresh)[0]

    try:
        runs = [threading.Thread(target=probe, args=("before", False))]
        runs[0].start()
        assert first_arrived.wait(10)
        waiting = []

        class Watched(threading.Event):  # tells when both later callers wait on the run in progress
            def wait(self, timeout=None):
                waiting.append(threading.current_thread().name)
                return super().wait(timeout)

        scheduler._flights["health"].done = Watched()
        runs += [threading.Thread(target=probe, args=(name, fresh), name=name) for name, fresh in
                 (("joined", False), ("fresh", True))]
        for run in runs[1:]:
            run.start()
        wait_until(lambda: sorted(waiting) == ["fresh", "joined"], "both callers waiting on the first run")
        release.set()
        for run in runs:
            run.join(20)
    finally:
        release.set()
        server.shutdown()
        server.server_close()
    assert verdicts == {"before": True, "joined": True, "fresh": False}
    assert answered == [200, 500], "one shared run, then one fresh run"
