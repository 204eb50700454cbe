"""Attack 6: secrets, the journal and the exporter's state are the owner's alone, whatever the umask."""

from __future__ import annotations

import os
import stat
import subprocess

import pytest
import yaml
from support import free_port

from tests.security.conftest import CLI, TOKEN, alert, command_target, receiver_section, start_exporter, stop_process
from tts_sentinel.receiver.journal import Journal


def test_a_token_file_others_can_read_is_refused_with_the_chmod_to_run(tmp_path):
    journal = tmp_path / "journal.sqlite3"
    config = tmp_path / "sentinel.yml"
    config.write_text(yaml.safe_dump({"receiver": {"listen_port": free_port(), "journal_path": str(journal)}}))
    token = tmp_path / "receiver.token"
    token.write_text(TOKEN + "\n")
    for mode in (0o644, 0o640, 0o604, 0o620):
        token.chmod(mode)
        r = subprocess.run([*CLI, "receiver", "--config", str(config), "--token-file", str(token)],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 2, (oct(mode), r.stderr)
        assert f"mode {mode:04o}" in r.stderr and f"chmod 600 {token}" in r.stderr
    assert not journal.exists(), "nothing started"


def test_exporter_state_dir_is_0700_and_its_files_0600_under_umask_022(tmp_path):
    state = tmp_path / "lib" / "tts-sentinel"
    old = tmp_path / "old-state"
    old.mkdir(mode=0o755)
    old.chmod(0o755)
    (old / "offsets.json").write_text("{}")
    (old / "offsets.json").chmod(0o644)
    for directory in (state, old):
        proc, _url = start_exporter(tmp_path, {"state_dir": str(directory)}, umask=0o022)
        try:
            assert stat.S_IMODE(os.stat(directory).st_mode) == 0o700, directory
        finally:
            stop_process(proc)
    assert stat.S_IMODE(os.stat(old / "offsets.json").st_mode) == 0o600, "an existing state file is tightened"


def test_the_journal_its_wal_shm_lock_and_its_directories_are_private_under_umask_022(tmp_path, start_receiver):
    state = tmp_path / "lib" / "tts-sentinel"
    journal = state / "journal.sqlite3"
    section = receiver_section(tmp_path, [command_target("t", tmp_path / "ops")], journal_path=str(journal))
    receiver = start_receiver(section, umask=0o022)
    job = receiver.wait_job(receiver.post(alert(service="t")).json()["new_jobs"][0])  # written, then updated
    assert job["status"] == "succeeded"
    for directory in (state, state.parent):
        assert stat.S_IMODE(os.stat(directory).st_mode) == 0o700, directory
    for suffix in ("", "-wal", "-shm", "-lock"):  # -lock: the writers' flock (receiver/txn.py)
        path = journal.with_name(journal.name + suffix)
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600, path
    receiver.stop()

    # A journal an older receiver left world-readable is tightened at the next start.
    journal.chmod(0o644)
    receiver = start_receiver(section, umask=0o022)
    assert receiver.post(alert(service="t", fingerprint="again")).status_code == 202
    for suffix in ("", "-wal", "-shm"):
        path = journal.with_name(journal.name + suffix)
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600, path


def test_a_planted_link_at_the_journals_lock_file_is_refused(tmp_path):
    """The writers' lock file sits next to the journal: a link planted there is not followed."""
    target = tmp_path / "elsewhere"
    target.write_text("keep")
    journal = tmp_path / "journal.sqlite3"
    journal.with_name(journal.name + "-lock").symlink_to(target)
    with pytest.raises(OSError, match="not a link"):
        Journal(journal)
    assert target.read_text() == "keep"


def test_a_journal_path_that_is_a_link_is_refused(tmp_path):
    target = tmp_path / "elsewhere"
    target.write_text("")
    journal = tmp_path / "journal.sqlite3"
    journal.symlink_to(target)
    config = tmp_path / "sentinel.yml"
    section = {"listen_port": free_port(), "journal_path": str(journal), "targets": [{"name": "t", "match": {"s": "t"}}]}
    config.write_text(yaml.safe_dump({"receiver": section}))
    token = tmp_path / "receiver.token"
    token.write_text(TOKEN)
    token.chmod(0o600)
    r = subprocess.run([*CLI, "receiver", "--config", str(config), "--token-file", str(token)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "not a link" in r.stderr, r.stderr
    assert target.read_text() == "", "nothing written through the link"
