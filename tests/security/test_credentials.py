"""Attack 3: credentials never ride in URLs, so none reaches a log, the journal, an API answer or a page.

Against a real receiver process and a real supervisord whose [inet_http_server] asks for a user
name and password: the receiver restarts through it with `username` + `password_file`, a wrong
password is refused by supervisord (and paged), and afterwards no password is found in the
receiver's output, the journal's files, GET /actions, /incidents, /unmatched or the pages.
A URL with `user:password@` is refused at config load with the fields to use instead.
"""

from __future__ import annotations

import base64
import json
import subprocess

import httpx
import pytest
import yaml
from support import free_port

from tests.receiver.conftest import Supervisor
from tests.security.conftest import AUTH, CLI, PageCatcher, alert, receiver_section, wait_for
from tts_sentinel.logsetup import JsonFormatter, TextFormatter
from tts_sentinel.receiver.pager import OnCallPager
from tts_sentinel.userinfo import strip_userinfo

SUP_PASSWORD = "sup-Pa55word-4e1f9c"
WRONG_PASSWORD = "wrong-Pa55word-77ab02"
AM_PASSWORD = "am-Pa55word-90d3e1"
URL_PASSWORD = "hunter2-in-an-alert-label"
SECRETS = (SUP_PASSWORD, WRONG_PASSWORD, AM_PASSWORD, URL_PASSWORD)


def _secret_file(path, text):
    path.write_text(text + "\n")
    path.chmod(0o600)
    return str(path)


def _supervisord_target(name, supervisor, password_file, program="tts-webui"):
    return {
        "name": name,
        "match": {"service": name},
        "actuator": "supervisord",
        "supervisord": {"url": supervisor.url, "username": "sentinel", "password_file": password_file,
                        "web_program": program},
        "cache_dir": None, "weights_dir": None, "service_config": None, "git_dir": None,
    }


@pytest.fixture
def locked_supervisor(tmp_path):
    workdir = tmp_path / "supervisor"
    workdir.mkdir()
    sup = Supervisor(workdir, username="sentinel", password=SUP_PASSWORD)
    yield sup
    sup.close()


def test_no_password_in_any_log_journal_answer_or_page(tmp_path, start_receiver, locked_supervisor):
    sup = locked_supervisor
    pages = PageCatcher(authorization="Basic " + base64.b64encode(f"oncall:{AM_PASSWORD}".encode()).decode())
    try:
        section = receiver_section(
            tmp_path,
            [
                _supervisord_target("t", sup, _secret_file(tmp_path / "sup.password", SUP_PASSWORD)),
                _supervisord_target("broken", sup, _secret_file(tmp_path / "wrong.password", WRONG_PASSWORD)),
            ],
            alertmanager_url=pages.url,
            alertmanager_username="oncall",
            alertmanager_password_file=_secret_file(tmp_path / "am.password", AM_PASSWORD),
            incidents={"families": [
                {"name": "web_front", "alerts": [{"alertname": "TtsHealthProbeFailing"}], "ladder": ["light"]},
            ]},
        )
        receiver = start_receiver(section)
        before = sup.pid("tts-webui")
        runbook = f"http://bob:{URL_PASSWORD}@wiki.example/runbook"

        ok = receiver.wait_job(receiver.post(alert(service="t", runbook=runbook, fingerprint="a")).json()["new_jobs"][0])
        assert ok["status"] == "succeeded", ok
        assert sup.pid("tts-webui") != before, "supervisord took the password and restarted the web front"
        assert ok["alerts"][0]["labels"]["runbook"] == "http://wiki.example/runbook", "userinfo stripped"

        refused = receiver.wait_job(receiver.post(alert(service="broken", fingerprint="b")).json()["new_jobs"][0])
        assert refused["status"] == "failed" and "refused the credentials (401)" in json.dumps(refused)
        page = wait_for(lambda: pages.alerts, what="the page for the refused restart")[0]
        assert page["labels"]["alertname"] == "TtsRemediationExhausted" and pages.refused == 0
        assert "refused the credentials" in page["annotations"]["actions"]

        answers = "".join(
            httpx.get(receiver.url + path, headers=AUTH).text for path in ("/actions", "/incidents", "/unmatched")
        )
        cli = subprocess.run([*CLI, "actions", "--journal", str(receiver.journal_path), "--json"],
                             capture_output=True, text=True, timeout=60).stdout
        journal = b"".join(
            p.read_bytes() for p in tmp_path.glob("journal.sqlite3*")
        )
        receiver.stop()
        journal_after = receiver.journal_path.read_bytes()
        where = {
            "receiver output": receiver.output().decode(errors="replace"),
            "API answers": answers,
            "actions CLI": cli,
            "journal files": journal.decode(errors="replace") + journal_after.decode(errors="replace"),
            "pages": json.dumps(pages.alerts),
        }
        assert "TtsRemediationExhausted" in where["pages"] and "wiki.example" in where["journal files"]
        for secret in SECRETS:
            for place, text in where.items():
                assert secret not in text, f"{secret} found in the {place}"
    finally:
        pages.close()


@pytest.mark.parametrize(
    ("key", "value", "fields"),
    [
        ("targets", [{"name": "t", "match": {"service": "t"},
                      "supervisord": {"url": f"http://sentinel:{SUP_PASSWORD}@127.0.0.1:9001/RPC2"}}],
         "`username` and `password_file`"),
        ("alertmanager_url", f"http://oncall:{AM_PASSWORD}@127.0.0.1:9093", "`alertmanager_username`"),
        ("targets", [{"name": "t", "match": {"service": "t"}, "actuator": "kubernetes",
                      "kubernetes": {"api_url": f"https://x:{SUP_PASSWORD}@kube.example"}}], "`token_file`"),
    ],
)
def test_a_url_with_credentials_is_refused_at_load_with_the_fields_to_use(tmp_path, key, value, fields):
    config = tmp_path / "sentinel.yml"
    section = {"listen_port": free_port(), "journal_path": str(tmp_path / "j.sqlite3"),
               "targets": [{"name": "t", "match": {"service": "t"}}], key: value}
    config.write_text(yaml.safe_dump({"receiver": section}))
    check = subprocess.run([*CLI, "check-config", str(config)], capture_output=True, text=True, timeout=60)
    assert check.returncode == 2 and fields in check.stdout and "user:password@" in check.stdout, check.stdout
    token = tmp_path / "receiver.token"
    token.write_text("t" * 32)
    token.chmod(0o600)
    start = subprocess.run([*CLI, "receiver", "--config", str(config), "--token-file", str(token)],
                           capture_output=True, text=True, timeout=60)
    assert start.returncode == 2 and fields in start.stderr
    for out in (check.stdout, check.stderr, start.stdout, start.stderr):
        assert SUP_PASSWORD not in out and AM_PASSWORD not in out, "the refusal does not repeat the secret"
    assert not (tmp_path / "j.sqlite3").exists(), "nothing started"


def test_a_password_file_others_can_read_stops_the_start(tmp_path):
    password = tmp_path / "sup.password"
    password.write_text(SUP_PASSWORD)
    password.chmod(0o644)
    config = tmp_path / "sentinel.yml"
    target = {"name": "t", "match": {"service": "t"},
              "supervisord": {"username": "sentinel", "password_file": str(password)}}
    config.write_text(yaml.safe_dump({"receiver": {"listen_port": free_port(), "targets": [target],
                                                   "journal_path": str(tmp_path / "j.sqlite3")}}))
    token = tmp_path / "receiver.token"
    token.write_text("t" * 32)
    token.chmod(0o600)
    r = subprocess.run([*CLI, "receiver", "--config", str(config), "--token-file", str(token)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and f"chmod 600 {password}" in r.stderr and SUP_PASSWORD not in r.stderr


def test_the_one_helper_strips_userinfo_wherever_text_leaves(tmp_path):
    assert strip_userinfo("at http://u:p@ss@h:9001/RPC2 and https://k:t@kube/x?a=b@c") == (
        "at http://h:9001/RPC2 and https://kube/x?a=b@c"
    )
    assert strip_userinfo('{"url": "http://u:p@h/"}, mail bob@example.com') == '{"url": "http://h/"}, mail bob@example.com'

    import logging

    record = logging.LogRecord("r", logging.ERROR, __file__, 1, "proxy %s failed", ("http://u:secret1@proxy:3128",), None)
    assert "secret1" not in TextFormatter().format(record) and "secret1" not in JsonFormatter().format(record)

    pages = PageCatcher()
    try:
        note = OnCallPager(pages.url).page("TtsRemediationExhausted", "t", "heavy_failed",
                                           "GET http://u:secret2@exporter/probe failed",
                                           annotations={"actions": "see http://u:secret3@wiki/x"})
        assert note.startswith("on-call paged")
        assert "secret" not in json.dumps(pages.alerts) and "http://exporter/probe" in json.dumps(pages.alerts)
    finally:
        pages.close()
