"""Attack 7: `--insecure` is loud and narrow: a WARNING, a gauge, loopback only."""

from __future__ import annotations

import logging
import subprocess
import threading

import httpx
import yaml
from support import free_port

from tests.security.conftest import CLI, alert, command_target, receiver_section, wait_for
from tts_sentinel.commands.receiver import is_loopback, warn_insecure


def test_insecure_refuses_any_address_but_loopback(tmp_path):
    journal = tmp_path / "journal.sqlite3"
    config = tmp_path / "sentinel.yml"
    config.write_text(yaml.safe_dump({"receiver": {"listen_port": free_port(), "journal_path": str(journal)}}))
    for host in ("0.0.0.0", "::", "192.0.2.10"):
        r = subprocess.run([*CLI, "receiver", "--config", str(config), "--insecure", "--host", host],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 2, r.stderr
        assert f"--insecure refuses to listen on {host}" in r.stderr and "receiver.token_file" in r.stderr
    assert not journal.exists(), "nothing started"


def test_insecure_on_loopback_warns_and_says_so_in_metrics(tmp_path, start_receiver):
    receiver = start_receiver(
        receiver_section(tmp_path, [command_target("t", tmp_path / "ops")]), "--insecure", token=False
    )
    out = wait_for(lambda: b"INSECURE" in receiver.output() and receiver.output(), what="the warning")
    warning = next(line for line in out.decode().splitlines() if "INSECURE" in line)
    assert "--insecure" in warning
    assert " WARNING " in warning and f"127.0.0.1:{receiver.section['listen_port']}" in warning
    assert "tts_receiver_insecure 1.0" in httpx.get(receiver.url + "/metrics").text
    assert receiver.post(alert(service="t"), headers={}).status_code == 202, "no token needed in this mode"


def test_the_warning_repeats_until_stopped(caplog):
    stop = threading.Event()
    with caplog.at_level(logging.WARNING, logger="tts_sentinel.receiver"):
        thread = threading.Thread(target=warn_insecure, args=("127.0.0.1:9465", stop, 0.05))
        thread.start()
        wait_for(lambda: len(caplog.records) >= 3, timeout=5, what="three warnings")
        stop.set()
        thread.join(5)
    assert not thread.is_alive()
    assert all("--insecure" in r.getMessage() for r in caplog.records)


def test_what_counts_as_loopback():
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("127.0.0.2") and is_loopback("localhost")
    assert not any(map(is_loopback, ("0.0.0.0", "::", "", "10.0.0.1", "no-such-host.invalid")))
