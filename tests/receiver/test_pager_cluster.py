"""Pages with an Alertmanager cluster: a real two-peer cluster on loopback, one peer killed; the
receiver's page goes to the next peer and on-call gets it once."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest
from support import free_port

from tests.receiver.conftest import Alertmanager, receiver_config, wait_for
from tts_sentinel.harness.oncall_sink import OncallSink
from tts_sentinel.receiver.journal import Journal

PEER_TIMEOUT = "2s"


class Peer:
    """One Alertmanager of the cluster, its on-call receiver the test's sink."""

    def __init__(self, workdir: Path, name: str, sink_url: str, peers: list[str]) -> None:
        workdir.mkdir()
        self.port, self.cluster_port = free_port(), free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.cluster = f"127.0.0.1:{self.cluster_port}"
        conf = workdir / "alertmanager.yml"
        conf.write_text(
            "route:\n  receiver: oncall\n  group_wait: 1s\n  group_by: [alertname]\n"
            f"receivers:\n  - name: oncall\n    webhook_configs: [{{url: '{sink_url}/{name}'}}]\n"
        )
        self.log = (workdir / "alertmanager.log").open("wb")
        self.proc = subprocess.Popen(
            [Alertmanager.BINARY, f"--config.file={conf}", f"--storage.path={workdir / 'data'}",
             f"--web.listen-address=127.0.0.1:{self.port}", f"--cluster.listen-address={self.cluster}",
             f"--cluster.advertise-address={self.cluster}", f"--cluster.peer-timeout={PEER_TIMEOUT}",
             *[f"--cluster.peer={p}" for p in peers]],
            stdout=self.log, stderr=subprocess.STDOUT,
        )

    def ready(self) -> bool:
        try:
            return httpx.get(self.url + "/-/ready", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def cluster_size(self) -> int:
        return len(httpx.get(self.url + "/api/v2/status", timeout=2).json()["cluster"].get("peers") or [])

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        self.log.close()


@pytest.fixture
def cluster(tmp_path):
    if not Path(Alertmanager.BINARY).exists():
        if os.environ.get("CI") == "true":
            pytest.fail("prometheus-alertmanager is not installed (make test installs it)")
        pytest.skip("prometheus-alertmanager is not installed")
    sink_port = free_port()
    sink = OncallSink("127.0.0.1", sink_port, tmp_path / "pages.jsonl")
    sink.start()
    sink_url = f"http://127.0.0.1:{sink_port}"
    peers: list[Peer] = []
    try:
        a = Peer(tmp_path / "a", "a", sink_url, [])
        peers.append(a)
        b = Peer(tmp_path / "b", "b", sink_url, [a.cluster])
        peers.append(b)
        wait_for(lambda: a.ready() and b.ready(), timeout=30, what="both peers ready")
        wait_for(lambda: a.cluster_size() == 2 and b.cluster_size() == 2, timeout=30, what="a 2-peer cluster")
        yield a, b, sink
    finally:
        for peer in peers:
            peer.close()
        sink.stop()


def test_a_page_goes_to_the_next_peer_when_one_is_down_and_arrives_once(cluster, make_receiver, tmp_path):
    a, b, sink = cluster
    os.kill(a.proc.pid, signal.SIGKILL)
    a.proc.wait(10)
    # A heavy job a crash left running is never resumed: the receiver pages at start-up.
    journal_path = tmp_path / "journal.sqlite3"
    journal = Journal(journal_path)
    job_id = journal.insert_job(target="qwen3-tts", tier="heavy", status="running", attempts=1, reason="segfault")
    journal.close()
    cfg = receiver_config(None, None, alertmanager_url=a.url, alertmanager_urls=[b.url])
    assert cfg.alertmanager_peers == [a.url, b.url]
    receiver = make_receiver(cfg, journal_path=journal_path)
    note = receiver.job(job_id)["note"]
    assert f"on-call paged: TtsRemediationExhausted reason=interrupted via {b.url}" in note, note
    assert f"Alertmanager at {a.url} unreachable" in note, "the journal says which peer failed"
    wait_for(lambda: "TtsRemediationExhausted" in sink.alertnames(), timeout=30, what="the page at on-call")
    time.sleep(5)  # more than twice the peer timeout: a second notification would have come by now
    firing = [p for p in sink.pages if p.get("status") == "firing"]
    assert len(firing) == 1, firing
    [page] = firing[0]["alerts"]
    assert page["labels"]["alertname"] == "TtsRemediationExhausted" and page["labels"]["reason"] == "interrupted"


def test_every_peer_down_is_journaled_not_lost_silently(make_receiver, tmp_path):
    dead = [f"http://127.0.0.1:{free_port()}", f"http://127.0.0.1:{free_port()}"]
    journal_path = tmp_path / "journal.sqlite3"
    journal = Journal(journal_path)
    job_id = journal.insert_job(target="qwen3-tts", tier="heavy", status="running", attempts=1, reason="segfault")
    journal.close()
    receiver = make_receiver(receiver_config(None, None, alertmanager_url=dead[0], alertmanager_urls=dead),
                             journal_path=journal_path)
    note = receiver.job(job_id)["note"]
    assert note.count("unreachable") == 2 and "on-call NOT told" in note, note
