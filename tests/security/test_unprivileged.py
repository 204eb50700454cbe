"""Least privilege: the receiver needs no root. Run as `nobody` (setpriv, all capabilities dropped)
with its own state directory and one supplementary group, it serves, journals, and restarts a
program of a root supervisord through the unix socket that group may open; without the group the
same restart fails with the reason in the journal, and nothing else of the host was needed."""

from __future__ import annotations

import grp
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import time
import xmlrpc.client
from pathlib import Path

import httpx
import pytest
import yaml
from support import free_port

from tests.security.conftest import AUTH, TOKEN, alert, payload, receiver_section, wait_for
from tts_sentinel.managers import SupervisordConfig, supervisord_proxy

NOBODY = 65534
SOCKET_GROUP = 64917  # a group no one on the host has: only the receiver gets it, below


@pytest.fixture
def world(tmp_path):
    if os.geteuid() != 0 or not shutil.which("setpriv"):
        pytest.skip("needs root (to start supervisord and drop to nobody) and setpriv")
    with pytest.raises(KeyError):
        grp.getgrgid(SOCKET_GROUP)  # the group grants nothing else on this host
    # pytest's tmp_path lives in root's 0700 folder: nobody needs a path it may traverse
    base = Path(tempfile.mkdtemp(prefix="tts-sentinel-unpriv-"))
    base.chmod(0o755)
    run = base / "run"
    run.mkdir(mode=0o755)
    sock = run / "supervisor.sock"
    conf = base / "supervisord.conf"
    conf.write_text(
        f"[unix_http_server]\nfile={sock}\nchmod=0770\n\n"
        f"[supervisord]\nnodaemon=true\nlogfile={run / 'supervisord.log'}\npidfile={run / 'supervisord.pid'}\n"
        f"childlogdir={run}\n\n[rpcinterface:supervisor]\n"
        "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface\n\n"
        "[program:tts-webui]\ncommand=sleep 3600\nstartsecs=0\nstopasgroup=true\nkillasgroup=true\n\n"
        "[program:tts-inference]\ncommand=sleep 3600\nstartsecs=0\nstopasgroup=true\nkillasgroup=true\n"
    )
    supervisord = subprocess.Popen([sys.executable, "-m", "supervisor.supervisord", "-c", str(conf)],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, start_new_session=True)
    proxy = supervisord_proxy(SupervisordConfig(url=f"unix://{sock}", timeout_seconds=10)).supervisor

    def running() -> bool:
        try:
            return proxy.getProcessInfo("tts-webui")["statename"] == "RUNNING"
        except (OSError, xmlrpc.client.Error):
            return False

    try:
        wait_for(running, timeout=60, what="supervisord and its program")
        os.chown(sock, 0, SOCKET_GROUP)  # what `chown=root:supervisor` does in [unix_http_server]
        yield base, sock, proxy
    finally:
        try:
            for info in proxy.getAllProcessInfo():
                if info["pid"]:
                    os.kill(info["pid"], 9)
        except Exception:  # noqa: BLE001 - whatever broke the test, supervisord below must still stop
            pass
        supervisord.terminate()
        supervisord.wait(15)
        shutil.rmtree(base, ignore_errors=True)


def start_as_nobody(base: Path, sock: Path, name: str, groups: list[int]) -> tuple[subprocess.Popen, str, Path]:
    home = base / name
    home.mkdir(mode=0o700)
    os.chown(home, NOBODY, NOBODY)
    token = home / "receiver.token"
    token.write_text(TOKEN + "\n")
    token.chmod(0o600)
    os.chown(token, NOBODY, NOBODY)
    port = free_port()
    config = home / "sentinel.yml"
    target = {"name": "t", "match": {"service": "t"}, "actuator": "supervisord",
              "supervisord": {"url": f"unix://{sock}"}, "cache_dir": None, "weights_dir": None,
              "service_config": None, "git_dir": None}
    section = receiver_section(home, [target], listen_port=port, token_file=str(token),
                               journal_path=str(home / "state" / "journal.sqlite3"))
    config.write_text(yaml.safe_dump({"receiver": section}))
    os.chown(config, NOBODY, NOBODY)
    group_arg = ["--groups", ",".join(map(str, groups))] if groups else ["--clear-groups"]
    argv = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", *group_arg, "--inh-caps=-all",
            "--bounding-set=-all", "--no-new-privs",
            sys.executable, "-m", "tts_sentinel.cli", "receiver", "--config", str(config)]
    log = (home / "out.log").open("wb")
    proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, cwd=home)
    url = f"http://127.0.0.1:{port}"

    def up() -> bool:
        assert proc.poll() is None, (home / "out.log").read_text()
        try:
            return httpx.get(url + "/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    wait_for(up, timeout=60, what=f"the receiver as nobody ({name})")
    return proc, url, home


def finished_job(url: str) -> dict:
    def done():
        jobs = httpx.get(url + "/actions", headers=AUTH, timeout=5).json()
        return jobs and jobs[0]["status"] not in ("queued", "running") and jobs[0]

    return wait_for(done, timeout=60, what="the job to finish")


def test_as_nobody_with_the_socket_group_it_serves_and_restarts_through_supervisord(world):
    base, sock, proxy = world
    assert stat.S_IMODE(sock.stat().st_mode) == 0o770 and sock.stat().st_gid == SOCKET_GROUP
    proc, url, home = start_as_nobody(base, sock, "with-group", [SOCKET_GROUP])
    try:
        status = Path(f"/proc/{proc.pid}/status").read_text().splitlines()
        fields = {line.split(":")[0]: line.split(":", 1)[1].split() for line in status if ":" in line}
        assert fields["Uid"] == [str(NOBODY)] * 4 and fields["Gid"] == [str(NOBODY)] * 4
        assert fields["Groups"] == [str(SOCKET_GROUP)] and fields["CapEff"] == ["0000000000000000"]
        before = proxy.getProcessInfo("tts-webui")["pid"]
        assert httpx.post(url + "/alerts", json=payload(alert(service="t")), headers=AUTH).status_code == 202
        job = finished_job(url)
        assert job["status"] == "succeeded", job
        after = proxy.getProcessInfo("tts-webui")
        assert after["statename"] == "RUNNING" and after["pid"] != before
        journal = home / "state" / "journal.sqlite3"
        assert journal.stat().st_uid == NOBODY and stat.S_IMODE(journal.stat().st_mode) == 0o600
    finally:
        proc.terminate()
        proc.wait(15)


def test_as_nobody_without_the_group_the_restart_fails_with_the_reason(world):
    base, sock, proxy = world
    proc, url, _ = start_as_nobody(base, sock, "no-group", [])
    try:
        before = proxy.getProcessInfo("tts-webui")["pid"]
        assert httpx.post(url + "/alerts", json=payload(alert(service="t")), headers=AUTH).status_code == 202
        job = finished_job(url)
        assert job["status"] == "failed", job
        assert "Permission denied" in str(job), job
        time.sleep(0.5)
        assert proxy.getProcessInfo("tts-webui")["pid"] == before
    finally:
        proc.terminate()
        proc.wait(15)
