"""Logs a person can read (issue 11, item 4), read from real `tts-sentinel` processes.

One startup line per process that says what it is, where it listens, which config, how it
authenticates, what it acts on and what it reads; every post the receiver refuses is one line with
its reason and the client's address; no library writes a line per request; `--log-format json`
(or `logging.format` in the config) makes every line one JSON object.
"""

from __future__ import annotations

import json
import re
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
import yaml
from support import free_port

from tests.security.conftest import AUTH, CLI, TOKEN, alert, command_target, payload, receiver_section, wait_for
from tts_sentinel import __version__
from tts_sentinel.config import ConfigError, parse_config
from tts_sentinel.receiver.rejections import RejectionThrottle

SLOW_BUCKET = {"requests_per_second": 0.001, "burst": 4}  # four posts with the token, then 429


def _bad_posts(url: str) -> list[tuple[int, str]]:
    """Every kind of refused request, in order; returns (status, the reason the log must give)."""
    json_type = {"Content-Type": "application/json"}
    sent = [
        (httpx.post(url + "/alerts", json=payload(alert())), "no Authorization header"),
        (httpx.post(url + "/alerts", json=payload(alert()), headers={"Authorization": "Bearer not-it"}),
         "wrong bearer token"),
        (httpx.post(url + "/alerts", json=payload(alert()), headers={"Authorization": "Basic dTpw"}),
         "not `Bearer TOKEN`"),
        (httpx.post(url + "/alerts", content=b'{"version": "4", "alerts": [', headers={**AUTH, **json_type}),
         "body is not JSON"),
        (httpx.post(url + "/alerts", json={"version": "4", "status": "firing"}, headers=AUTH), "alerts: Field required"),
        (httpx.post(url + "/alerts", content=b"x" * 5000, headers={**AUTH, **json_type}), "larger than 2048 bytes"),
        (httpx.get(url + "/alerts", headers=AUTH), "Method Not Allowed"),
        (httpx.post(url + "/no-such-path", json={}, headers=AUTH), "Not Found"),
    ]
    accepted = httpx.post(url + "/alerts", json=payload(alert(service="t")), headers=AUTH)
    assert accepted.status_code == 202, accepted.text
    sent.append((httpx.post(url + "/alerts", json=payload(alert(service="t")), headers=AUTH), "too many posts"))
    statuses = [answer.status_code for answer, _ in sent]
    assert statuses == [401, 401, 401, 422, 422, 413, 405, 404, 429], statuses
    return [(answer.status_code, reason) for answer, reason in sent]


def test_receiver_text_log_has_a_startup_line_and_one_line_per_refused_request(tmp_path, start_receiver):
    section = receiver_section(tmp_path, [command_target("t", tmp_path / "ops")], max_body_bytes=2048,
                               rate_limit=SLOW_BUCKET)
    receiver = start_receiver(section)
    expected = _bad_posts(receiver.url)
    lines = receiver.output().decode().splitlines()

    startup = [line for line in lines if "receiver starting" in line]
    assert len(startup) == 1, lines
    for part in (f"version={__version__}", f"listen=127.0.0.1:{section['listen_port']}",
                 f"config={receiver.config_path}", f'auth="bearer token from {receiver.token_file}"',
                 "targets=t(command)", "sources=webui,inference,health", "alertmanager="):
        assert part in startup[0], (part, startup[0])

    refused = [line for line in lines if "rejected" in line]
    assert len(refused) == len(expected), "\n".join(refused)
    for line, (status, reason) in zip(refused, expected, strict=True):
        assert f"({status}): " in line and reason in line, (status, reason, line)
        assert re.search(r" client=127\.0\.0\.1:\d+ ", line), line
        assert " WARNING " in line, line
    assert "/alerts (202)" not in "\n".join(lines), "an accepted post is not a refusal"
    assert "healthz" not in "\n".join(lines), "no line per request: the test polled /healthz until it answered"
    assert TOKEN not in "\n".join(lines)


def test_receiver_json_log_is_one_object_a_line_with_the_same_facts(tmp_path, start_receiver):
    section = receiver_section(tmp_path, [command_target("t", tmp_path / "ops")], max_body_bytes=2048,
                               rate_limit=SLOW_BUCKET)
    receiver = start_receiver(section, "--log-format", "json")
    expected = _bad_posts(receiver.url)
    records = [json.loads(line) for line in receiver.output().decode().splitlines()]
    assert all({"ts", "level", "logger", "msg"} <= set(r) for r in records), records
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", r["ts"]) for r in records)

    (startup,) = [r for r in records if r["msg"] == "receiver starting"]
    assert startup["version"] == __version__ and startup["listen"] == f"127.0.0.1:{section['listen_port']}"
    assert startup["config"] == str(receiver.config_path) and startup["targets"] == ["t(command)"]
    assert startup["auth"] == f"bearer token from {receiver.token_file}"
    assert startup["sources"] == ["webui", "inference", "health"] and startup["level"] == "INFO"

    refused = [r for r in records if r["msg"].startswith("rejected ")]
    assert [r["status"] for r in refused] == [status for status, _ in expected]
    for record, (status, reason) in zip(refused, expected, strict=True):
        assert reason in record["msg"] and record["logger"] == "tts_sentinel.receiver.rejections", record
        assert re.fullmatch(r"127\.0\.0\.1:\d+", record["client"]), record


def test_insecure_is_loud_in_json_too(tmp_path, start_receiver):
    section = receiver_section(tmp_path, [command_target("t", tmp_path / "ops")])
    receiver = start_receiver(section, "--insecure", "--log-format", "json", token=False)
    records = wait_for(lambda: [json.loads(x) for x in receiver.output().decode().splitlines() if "INSECURE" in x],
                       timeout=30, what="the --insecure warning")
    assert records[0]["level"] == "WARNING" and "--insecure" in records[0]["msg"]
    (startup,) = [json.loads(x) for x in receiver.output().decode().splitlines() if "receiver starting" in x]
    assert startup["auth"] == "none (--insecure)"


class _HealthyService:
    """Stand-in web front that answers the L1 probe; counts the probes it got."""

    def __init__(self) -> None:
        self.hits = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802
                server.hits += 1
                body = b'{"status": "ok"}'
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.http.server_address[1]}/health"
        threading.Thread(target=self.http.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.http.shutdown()
        self.http.server_close()


def _run(argv: list[str], out: Path) -> subprocess.Popen:
    with out.open("wb") as f:
        return subprocess.Popen(argv, stdout=f, stderr=subprocess.STDOUT)


def _stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


def test_exporter_json_from_the_config_says_what_it_probes_and_writes_no_line_per_probe(tmp_path):
    service = _HealthyService()
    port = free_port()
    log_file = tmp_path / "inference.log"
    log_file.write_text("")
    config = tmp_path / "sentinel.yml"
    config.write_text(yaml.safe_dump({
        "logging": {"format": "json"},
        "exporter": {
            "listen_port": port, "state_dir": str(tmp_path / "state"), "gpu": {"enabled": False},
            "logs": {"files": [{"name": "inference", "path": str(log_file)}]},
            "probes": {"health": {"url": service.url, "interval_seconds": 0.1},
                       "synthesis": {"enabled": False}, "semantic": {"enabled": False},
                       "quality": {"enabled": False}},
        },
    }))
    out = tmp_path / "exporter.out"
    proc = _run([*CLI, "exporter", "--config", str(config)], out)
    try:
        wait_for(lambda: service.hits >= 20, timeout=60, what="twenty health probes")
        assert "tts_probe_success" in httpx.get(f"http://127.0.0.1:{port}/metrics").text
    finally:
        _stop(proc)
        service.close()
    records = [json.loads(line) for line in out.read_text().splitlines()]
    (startup,) = [r for r in records if r["msg"].startswith("exporter listening")]
    assert startup["listen"] == f"127.0.0.1:{port}" and startup["config"] == str(config)
    assert startup["targets"] == [f"health={service.url}"] and startup["sources"] == [f"inference={log_file}"]
    assert startup["version"] == __version__ and startup["gpu"] == "disabled"
    assert not [r for r in records if r["logger"].startswith(("httpx", "httpcore"))], records
    assert len(records) < 10, f"{service.hits} probes must not make {len(records)} lines: {records}"


def test_the_simulator_in_vllm_omni_mode_says_so_on_stderr(tmp_path):
    port = free_port()
    config = tmp_path / "sim.yml"
    config.write_text(yaml.safe_dump({"simulator": {"protocol": "openai", "api_port": port,
                                                    "log_dir": str(tmp_path / "logs")}}))
    out = tmp_path / "sim.out"
    proc = _run([*CLI, "simulate", "inference", "--config", str(config)], out)
    try:
        wait_for(lambda: "simulator inference listening" in out.read_text(), timeout=60, what="the startup line")
    finally:
        _stop(proc)
    line = next(x for x in out.read_text().splitlines() if "simulator inference listening" in x)
    for part in (f"listen=127.0.0.1:{port}", "protocol=openai", f"config={config}", f"version={__version__}"):
        assert part in line, (part, line)
    assert "listening" in (tmp_path / "logs" / "inference.log").read_text(), "the simulated service's own log"


def test_a_client_refused_again_and_again_is_counted_past_the_burst():
    now = [0.0]
    throttle = RejectionThrottle(burst=3, window=10.0, clock=lambda: now[0])
    decisions = [throttle.admit(("10.0.0.1", 401)) for _ in range(5)]
    assert [d[0] for d in decisions] == [True, True, True, False, False]
    assert throttle.admit(("10.0.0.2", 401))[0], "another client has its own lines"
    assert throttle.admit(("10.0.0.1", 429))[0], "another answer too"
    now[0] = 12.0
    logged, held, length = throttle.admit(("10.0.0.1", 401))
    assert logged and held == 2 and length == 12.0


def test_the_logging_section_is_checked_like_the_rest_of_the_config():
    with pytest.raises(ConfigError, match=r"<config>:3: logging\.format"):
        parse_config("logging:\n  level: debug\n  format: xml\n")
    with pytest.raises(ConfigError, match=r"<config>:2: logging\.level: .*unknown log level 'LOUD'"):
        parse_config("logging:\n  level: LOUD\n")
    assert parse_config("logging: {format: json, level: debug}\n").logging.level == "DEBUG"
