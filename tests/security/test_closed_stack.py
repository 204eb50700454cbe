"""Attack 12: Alertmanager's and Prometheus' own APIs were open, so any local process could post
`tier=heavy` to Alertmanager, which forwards it with the receiver's token. The stack we ship (the
harness behind `make demo`, drill, soak and the end-to-end tests; docker-compose.yml) runs both
with `--web.config.file` basic auth; every client of theirs logs in from a 0600 password file."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import time
from pathlib import Path

import bcrypt
import httpx
import pytest
import yaml
from support import free_port, require_binary, started_stack

from tts_sentinel.harness.stack import Stack
from tts_sentinel.receiver.pager import OnCallPager

ROOT = Path(__file__).parents[2]
FORGED = {"alertname": "TtsHealthProbeFailing", "tier": "heavy", "severity": "critical", "service": "qwen3-tts",
          "forged": "yes"}


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    yield from started_stack(Stack, tmp_path_factory.mktemp("closed"))


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def test_neither_api_answers_without_the_login_and_a_forged_heavy_alert_is_refused(stack):
    login = stack.web.auth()
    wrong = httpx.BasicAuth(stack.web.username, "not-the-password")
    prom, am = stack.url("prometheus"), stack.url("alertmanager")
    for url in (f"{prom}/api/v1/query?query=up", f"{prom}/api/v1/alerts", f"{prom}/federate?match[]=up",
                f"{prom}/api/v1/status/config", f"{prom}/-/ready", f"{am}/api/v2/alerts", f"{am}/api/v2/silences", f"{am}/-/ready"):
        assert httpx.get(url, timeout=5).status_code == 401, url
        assert httpx.get(url, timeout=5, auth=wrong).status_code == 401, url
        assert httpx.get(url, timeout=5, auth=login).status_code == 200, url
    assert httpx.post(f"{prom}/-/reload", timeout=5).status_code == 401

    forged = [{"labels": FORGED, "startsAt": _now()}]
    assert httpx.post(f"{am}/api/v2/alerts", json=forged, timeout=5).status_code == 401
    assert httpx.post(f"{am}/api/v2/alerts", json=forged, timeout=5, auth=wrong).status_code == 401
    held = httpx.get(f"{am}/api/v2/alerts", params={"filter": 'forged="yes"'}, auth=login, timeout=5).json()
    assert held == [], "Alertmanager took the forged alert: it would forward it with the receiver's token"


def test_prometheus_and_the_receivers_pager_log_in_to_alertmanager(stack):
    login = stack.web.auth()
    ams = httpx.get(stack.url("prometheus", "/api/v1/alertmanagers"), auth=login, timeout=5).json()["data"]
    assert [a["url"] for a in ams["activeAlertmanagers"]] == [stack.url("alertmanager", "/api/v2/alerts")]
    config = yaml.safe_load(stack.config_path.read_text())["receiver"]
    pager = OnCallPager(config["alertmanager_url"], username=config["alertmanager_username"],
                  password_file=Path(config["alertmanager_password_file"]))
    note = pager.page("TtsRemediationRefused", "qwen3-tts", "closed-stack-test", "a page through the login")
    assert note.startswith("on-call paged"), note
    got = httpx.get(stack.url("alertmanager", "/api/v2/alerts"), params={"filter": 'reason="closed-stack-test"'},
                    auth=login, timeout=5).json()
    assert [a["labels"]["alertname"] for a in got] == ["TtsRemediationRefused"]
    without = OnCallPager(config["alertmanager_url"]).page("TtsRemediationRefused", "qwen3-tts", "no-login", "refused")
    assert "401" in without, without


def test_the_password_is_in_one_private_file_and_every_config_names_files(stack):
    password = stack.web.password()
    for path in (stack.web.password_file, stack.web.config_file, stack.dir / "receiver.token"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert bcrypt.checkpw(password.encode(), yaml.safe_load(stack.web.config_file.read_text())
                          ["basic_auth_users"][stack.web.username].encode())
    leaks = [p for p in stack.dir.rglob("*") if p.is_file() and p != stack.web.password_file
             and password.encode() in p.read_bytes()]
    assert leaks == []
    prometheus = yaml.safe_load((stack.dir / "prometheus.yml").read_text())
    assert prometheus["alerting"]["alertmanagers"][0]["basic_auth"] == {
        "username": stack.web.username, "password_file": str(stack.web.password_file)}
    hook = next(r for r in yaml.safe_load((stack.dir / "alertmanager.yml").read_text())["receivers"]
                if r["name"] == "tts-sentinel")["webhook_configs"][0]
    assert hook["http_config"]["authorization"] == {"type": "Bearer",
                                                    "credentials_file": str(stack.dir / "receiver.token")}


def test_docker_compose_runs_prometheus_and_alertmanager_behind_a_login():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]

    def mounts(service: str) -> dict[str, str]:
        return {v.split(":")[1]: v.split(":")[0] for v in compose[service].get("volumes", [])}

    for service in ("prometheus", "alertmanager"):
        flag = next(a for a in compose[service]["command"] if a.startswith("--web.config.file="))
        assert mounts(service)[flag.split("=", 1)[1]] == "./secrets/nobody/web-config.yml", service
    prometheus = yaml.safe_load((ROOT / "rules" / "prometheus.yml").read_text())
    auth = prometheus["alerting"]["alertmanagers"][0]["basic_auth"]
    assert set(auth) == {"username", "password_file"}, "a password file, never the password"
    assert mounts("prometheus")[auth["password_file"]] == "./secrets/nobody/web.password"
    receiver = yaml.safe_load((ROOT / "tts-sentinel.yml").read_text())["receiver"]
    assert receiver["alertmanager_username"] == auth["username"]
    assert mounts("receiver")[receiver["alertmanager_password_file"]] == "./secrets/receiver/web.password"
    datasource = yaml.safe_load((ROOT / "dashboards/provisioning/datasources/prometheus.yml").read_text())
    source = datasource["datasources"][0]
    assert source["basicAuth"] is True and source["basicAuthUser"] == auth["username"]
    grafana_file = source["secureJsonData"]["basicAuthPassword"].removeprefix("$__file{").removesuffix("}")
    assert mounts("grafana")[grafana_file] == "./secrets/grafana/web.password"


def test_docker_compose_config_accepts_the_file(tmp_path):
    docker = shutil.which("docker")
    if not docker or subprocess.run([docker, "compose", "version"], capture_output=True).returncode != 0:
        pytest.skip("no `docker compose` client here (the file's structure is checked above)")
    r = subprocess.run([docker, "compose", "-f", str(ROOT / "docker-compose.yml"), "config", "--quiet"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr


def test_the_compose_secrets_script_writes_private_files_alertmanager_accepts(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("the script gives each file to its container's user: run as root")
    alertmanager = require_binary("prometheus-alertmanager", "alertmanager")
    promtool = require_binary("promtool")
    secrets = tmp_path / "secrets"
    r = subprocess.run(["sh", str(ROOT / "deploy" / "compose" / "make-secrets.sh"), str(secrets)],
                       capture_output=True, text=True, timeout=120, env={**os.environ, "PYTHON": sys.executable})
    assert r.returncode == 0, r.stdout + r.stderr
    owners = {"nobody": 65534, "receiver": 10001, "grafana": 472}
    for path in secrets.rglob("*"):
        st = path.stat()
        assert stat.S_IMODE(st.st_mode) == (0o700 if path.is_dir() else 0o600), path
        assert st.st_uid == owners[path.relative_to(secrets).parts[0]], path
    password = (secrets / "receiver" / "web.password").read_text().strip()
    assert (secrets / "nobody" / "web.password").read_text().strip() == password
    assert (secrets / "grafana" / "web.password").read_text() == password
    assert (secrets / "nobody" / "receiver.token").read_text() == (secrets / "receiver" / "receiver.token").read_text()
    check = subprocess.run([promtool, "check", "web-config", str(secrets / "nobody" / "web-config.yml")],
                           capture_output=True, text=True, timeout=60)
    assert check.returncode == 0, check.stdout + check.stderr

    port = free_port()
    (tmp_path / "am.yml").write_text(yaml.safe_dump({"route": {"receiver": "x"}, "receivers": [{"name": "x"}]}))
    am = subprocess.Popen([alertmanager, f"--config.file={tmp_path / 'am.yml'}", f"--storage.path={tmp_path}",
                           f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address=",
                           f"--web.config.file={secrets / 'nobody' / 'web-config.yml'}"],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        url = f"http://127.0.0.1:{port}/api/v2/status"
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(url, auth=("sentinel", password), timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "Alertmanager never accepted the login"
            time.sleep(0.2)
        assert httpx.get(url, timeout=2).status_code == 401
    finally:
        am.terminate()
        am.wait(15)
