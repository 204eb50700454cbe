"""Attack 6 (token and exporter state): secrets and state are the owner's alone, whatever the umask."""

from __future__ import annotations

import os
import stat
import subprocess

import yaml
from support import free_port

from tests.security.conftest import CLI, TOKEN, start_exporter, stop_process


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
