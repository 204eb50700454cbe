"""The supervisord source against a real supervisord: crashes count, requested restarts do not."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import xmlrpc.client
from pathlib import Path

import pytest
from support import free_port

from tts_sentinel.exporter.processes.collector import ProcessCollector
from tts_sentinel.exporter.processes.config import ProcessesConfig, SupervisordSourceConfig
from tts_sentinel.exporter.processes.source import SourceError
from tts_sentinel.exporter.processes.supervisord import SupervisordSource, exit_code
from tts_sentinel.managers import SupervisordConfig, supervisord_proxy

# Sleeps until its trigger file appears, then exits with the code written in it.
PROGRAM = """
import os, sys, time
trigger = sys.argv[1]
while True:
    if os.path.exists(trigger):
        code = int(open(trigger).read())
        os.remove(trigger)
        sys.exit(code)
    time.sleep(0.05)
"""


class RealSupervisord:
    """supervisord on a free port running `web` and `inference` copies of PROGRAM (and more, if asked)."""

    def __init__(self, workdir: Path, logfile: str | None = None, extra: str = "", stdout=subprocess.DEVNULL,
                 password: str | None = None) -> None:
        self.dir = workdir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/RPC2"
        (workdir / "program.py").write_text(PROGRAM)
        programs = "".join(
            f"[program:{name}]\ncommand={sys.executable} {workdir / 'program.py'} {workdir / ('crash-' + name)}\n"
            "startsecs=0\nautorestart=true\nstopwaitsecs=5\n"
            for name in ("web", "inference")
        )
        (workdir / "supervisord.conf").write_text(
            f"[supervisord]\nnodaemon=true\nlogfile={logfile or workdir / 'supervisord.log'}\n"
            f"pidfile={workdir / 'supervisord.pid'}\nchildlogdir={workdir}\n"
            f"[inet_http_server]\nport=127.0.0.1:{self.port}\n"
            + (f"username=sentinel\npassword={password}\n" if password else "")
            + "[rpcinterface:supervisor]\n"
            "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface\n"
            + programs + extra
        )
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "supervisor.supervisord", "-c", str(workdir / "supervisord.conf")],
            stdout=stdout, stderr=subprocess.STDOUT, start_new_session=True,
        )
        self.password_file = None
        if password:
            self.password_file = workdir / "supervisord.password"
            self.password_file.write_text(password + "\n")
            self.password_file.chmod(0o600)
        self.rpc = supervisord_proxy(SupervisordConfig(
            url=self.url, username="sentinel" if password else None, password_file=self.password_file)).supervisor
        self.wait(lambda: all(self.info(p)["statename"] == "RUNNING" for p in ("web", "inference")))

    def info(self, program: str) -> dict:
        return self.rpc.getProcessInfo(program)

    def wait(self, condition, timeout: float = 20.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                value = condition()
            except (OSError, xmlrpc.client.Error):
                value = None
            if value:
                return value
            time.sleep(0.05)
        raise AssertionError("supervisord did not get there in time")

    def crash(self, program: str, code: int) -> None:
        """Make the program exit with `code`, and wait until supervisord has started it again."""
        before = self.info(program)["pid"]
        (self.dir / f"crash-{program}").write_text(str(code))
        self.wait(lambda: self.info(program)["pid"] not in (0, before) and self.info(program)["statename"] == "RUNNING")

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=20)


@pytest.fixture
def supervisord(tmp_path):
    s = RealSupervisord(tmp_path)
    yield s
    s.stop()


def source_for(s: RealSupervisord, **names) -> SupervisordSource:
    return SupervisordSource(SupervisordSourceConfig(url=s.url, web_program=names.get("web", "web"),
                                                     inference_program=names.get("inference", "inference")))


def by_component(reading):
    return {p.component: p for p in reading.processes}


def test_reads_state_pid_start_of_both_programs(supervisord):
    reading = source_for(supervisord).read()
    web, inference = by_component(reading)["web"], by_component(reading)["inference"]
    assert reading.note == ""
    assert web.up and web.state == "running" and web.name == "web" and not web.backoff
    assert web.restarts == 0 and inference.restarts == 0
    assert web.start_time_seconds == supervisord.info("web")["start"]
    assert abs(web.start_time_seconds - time.time()) < 60


def test_a_crash_counts_one_restart_with_its_exit_code_and_leaves_the_other_program_alone(supervisord):
    source = source_for(supervisord)
    source.read()
    supervisord.crash("web", 1)
    reading = by_component(source.read())
    assert reading["web"].restarts == 1
    assert reading["web"].last_exit_code == 1
    assert reading["web"].up  # autorestart already brought it back: the crash is visible only here
    assert reading["inference"].restarts == 0
    assert reading["inference"].last_exit_code is None


def test_death_by_signal_reads_as_128_plus_the_signal(supervisord):
    source = source_for(supervisord)
    source.read()
    pid = supervisord.info("inference")["pid"]
    os.kill(pid, signal.SIGKILL)
    supervisord.wait(lambda: supervisord.info("inference")["pid"] not in (0, pid))
    reading = by_component(source.read())
    assert reading["inference"].restarts == 1
    assert reading["inference"].last_exit_code == 137


def test_a_requested_stop_and_start_is_not_a_crash(supervisord):
    """The receiver restarts through stopProcess/startProcess: that must not raise the crash count."""
    source = source_for(supervisord)
    source.read()
    pid = supervisord.info("web")["pid"]
    supervisord.rpc.stopProcess("web", True)
    supervisord.rpc.startProcess("web", True)
    reading = by_component(source.read())
    assert supervisord.info("web")["pid"] != pid
    assert reading["web"].restarts == 0


def test_crashes_between_reads_all_count(supervisord):
    source = source_for(supervisord)
    source.read()
    for _ in range(3):
        supervisord.crash("web", 3)
    assert by_component(source.read())["web"].restarts == 3


def test_a_log_that_holds_every_line_twice_still_counts_one_crash_once(tmp_path):
    """nodaemon=true also logs to stdout; a harness that sends stdout to the logfile doubles every line."""
    with (tmp_path / "supervisord.log").open("ab") as out:
        s = RealSupervisord(tmp_path, stdout=out)
    try:
        source = source_for(s)
        source.read()
        for _ in range(2):
            s.crash("web", 1)
            source.read()
            time.sleep(0.3)
        assert (tmp_path / "supervisord.log").read_text().count("exited: web (exit status 1; not expected)") == 4
        assert by_component(source.read())["web"].restarts == 2
    finally:
        s.stop()


def test_crashes_before_the_exporter_started_give_the_last_exit_code_but_no_restarts(supervisord):
    supervisord.crash("web", 4)
    reading = by_component(source_for(supervisord).read())
    assert reading["web"].restarts == 0
    assert reading["web"].last_exit_code == 4


def test_a_program_that_keeps_dying_is_backoff_then_fatal_and_down(tmp_path):
    extra = (f"[program:broken]\ncommand={sys.executable} -c 'import sys; sys.exit(2)'\n"
             "startsecs=1\nstartretries=2\nautorestart=true\n")
    s = RealSupervisord(tmp_path, extra=extra)
    try:
        source = source_for(s, inference="broken")
        source.read()
        s.wait(lambda: s.info("broken")["statename"] == "FATAL", timeout=30)
        broken = by_component(source.read())["inference"]
        assert broken.state == "fatal" and broken.backoff and not broken.up
        assert broken.last_exit_code == 2
        assert broken.restarts >= 2
    finally:
        s.stop()


def test_without_a_main_log_every_new_pid_counts_and_the_reading_says_so(tmp_path):
    s = RealSupervisord(tmp_path, logfile="/dev/null")
    try:
        source = source_for(s)
        assert source.read().note == "no_main_log"
        s.crash("web", 1)
        s.rpc.stopProcess("inference", True)
        s.rpc.startProcess("inference", True)
        reading = source.read()
        assert reading.note == "no_main_log"
        assert by_component(reading)["web"].restarts == 1
        assert by_component(reading)["inference"].restarts == 1  # a requested restart cannot be told apart here
    finally:
        s.stop()


def test_an_unknown_program_name_says_which_key_to_set(supervisord):
    with pytest.raises(SourceError) as err:
        source_for(supervisord, web="tts-webui").read()
    assert err.value.reason == "not_found"
    assert "exporter.processes.supervisord.web_program" in str(err.value)
    assert "inference, web" in str(err.value)


def test_a_stopped_supervisord_is_a_down_source_not_an_all_clear(supervisord):
    collector = ProcessCollector(ProcessesConfig(supervisord=SupervisordSourceConfig(
        url=supervisord.url, web_program="web", inference_program="inference")))
    assert collector.read()[0] is not None
    supervisord.stop()
    reading, error = collector.read()
    assert reading is None
    assert error.reason == "unreachable"
    assert "exporter.processes.supervisord.url" in str(error)


def test_the_background_poll_sees_each_new_pid_between_scrapes(tmp_path):
    """Without a main log only pids tell; two crashes between scrapes are two restarts, not one."""
    s = RealSupervisord(tmp_path, logfile="/dev/null")
    collector = ProcessCollector(ProcessesConfig(poll_interval_seconds=0.1, supervisord=SupervisordSourceConfig(
        url=s.url, web_program="web", inference_program="inference")))
    try:
        collector.read()
        collector.start()
        s.crash("web", 1)
        time.sleep(0.5)
        s.crash("web", 1)
        time.sleep(0.5)
        collector.stop()
        reading, _ = collector.read()
        assert by_component(reading)["web"].restarts == 2
    finally:
        collector.stop()
        s.stop()


@pytest.mark.parametrize(("how", "code"), [
    ("exit status 1", 1),
    ("exit status 0", 0),
    ("terminated by SIGSEGV (core dumped)", 139),
    ("terminated by SIGKILL", 137),
    ("terminated by signal 99", 227),
    ("something else", None),
])
def test_exit_code_in_supervisords_words(how, code):
    assert exit_code(how) == code


def test_a_password_protected_supervisord_is_read_with_the_receivers_credential_fields(tmp_path):
    s = RealSupervisord(tmp_path, password="s3cret-pass")
    try:
        with pytest.raises(SourceError) as denied:
            SupervisordSource(SupervisordSourceConfig(url=s.url, web_program="web", inference_program="inference")).read()
        assert denied.value.reason == "denied" and "username and password_file" in str(denied.value)
        config = SupervisordSourceConfig(url=s.url, web_program="web", inference_program="inference",
                                         username="sentinel", password_file=s.password_file)
        reading = SupervisordSource(config).read()
        assert {p.component: p.up for p in reading.processes} == {"web": True, "inference": True}
        # a password file others can read is refused with the reason, never used
        s.password_file.chmod(0o644)
        with pytest.raises(SourceError) as unsafe:
            SupervisordSource(config).read()
        assert unsafe.value.reason == "denied" and "chmod 600" in str(unsafe.value)
        assert "s3cret-pass" not in str(denied.value) + str(unsafe.value)
    finally:
        s.stop()
