"""procgroup: commands run in a process group of their own, and timeouts and stops end the whole group."""

from __future__ import annotations

import os
import signal
import sys
import time

import pytest

from tts_sentinel.procgroup import GroupDeadline, run_group, spawn_group, stop_group


def python(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def with_grandchild(pidfile, then: str) -> list[str]:
    """A command that starts a sleeping grandchild (which keeps stdout open), writes its pid, then runs `then`."""
    return python(
        "import subprocess, sys, time\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
        f"open({str(pidfile)!r}, 'w').write(str(child.pid))\n"
        "print('started', flush=True)\n"
        f"{then}\n"
    )


def gone(pid: int, within: float = 10.0) -> bool:
    """True once `pid` no longer runs (an unreaped zombie, whose parent died, counts as gone)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/stat") as f:
                if f.read().split(") ", 1)[1].startswith("Z"):
                    return True
        except FileNotFoundError:
            return True
        time.sleep(0.05)
    return False


def test_run_group_returns_output_and_exit_status():
    done = run_group(python("import sys; print('out'); sys.stderr.write('err\\n'); sys.exit(3)"), 10)
    assert done.output.split() == [b"out", b"err"]
    assert done.returncode == 3
    assert not done.timed_out


def test_run_group_passes_only_the_given_environment():
    done = run_group(python("import os; print(sorted(k for k in os.environ if k.startswith('TTS_')))"), 10,
                     env={"TTS_X": "1", "PATH": os.environ["PATH"]})
    assert done.output.strip() == b"['TTS_X']"


def test_run_group_timeout_kills_the_grandchildren_and_keeps_the_output(tmp_path):
    pidfile = tmp_path / "grandchild.pid"
    started = time.monotonic()
    done = run_group(with_grandchild(pidfile, "time.sleep(60)"), 0.5)
    assert time.monotonic() - started < 10
    assert done.timed_out
    assert done.returncode == -signal.SIGKILL
    assert done.output.strip() == b"started"
    assert gone(int(pidfile.read_text())), "the grandchild survived the timeout"


def test_a_program_that_cannot_start_raises_oserror(tmp_path):
    with pytest.raises(OSError):
        spawn_group([str(tmp_path / "no-such-program")])


def test_stderr_can_be_discarded():
    proc = spawn_group(python("import sys; print('out'); sys.stderr.write('err\\n')"), merge_stderr=False)
    out, _ = proc.communicate(timeout=10)
    assert out.split() == [b"out"]


def test_deadline_kills_a_streaming_command_and_its_children(tmp_path):
    pidfile = tmp_path / "grandchild.pid"
    proc = spawn_group(with_grandchild(pidfile, "time.sleep(60)"))
    assert proc.stdout is not None
    started = time.monotonic()
    with GroupDeadline(proc, 0.5) as deadline:
        out = proc.stdout.read()  # EOF only once the grandchild, which holds stdout too, is dead
        rc = proc.wait()
    assert time.monotonic() - started < 10, "the grandchild outlived the deadline and held stdout open"
    assert deadline.expired
    assert out.strip() == b"started"
    assert rc == -signal.SIGKILL
    assert gone(int(pidfile.read_text()))


def test_deadline_leaves_a_command_that_ends_in_time_alone():
    proc = spawn_group(python("print('done')"))
    with GroupDeadline(proc, 30) as deadline:
        out, _ = proc.communicate(timeout=10)
    assert not deadline.expired
    assert out.strip() == b"done"
    assert proc.returncode == 0


def test_stop_group_terminates_the_group(tmp_path):
    pidfile = tmp_path / "grandchild.pid"
    proc = spawn_group(with_grandchild(pidfile, "time.sleep(60)"))
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == b"started"
    stop_group(proc, grace_seconds=5)
    assert proc.returncode == -signal.SIGTERM
    assert gone(int(pidfile.read_text()))
    proc.stdout.close()


def test_stop_group_kills_a_command_that_ignores_sigterm():
    proc = spawn_group(python(
        "import signal, time\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "print('ready', flush=True)\n"
        "time.sleep(60)\n"
    ))
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == b"ready"
    started = time.monotonic()
    stop_group(proc, grace_seconds=0.3)
    assert proc.returncode == -signal.SIGKILL
    assert time.monotonic() - started < 5
    proc.stdout.close()


def test_stop_group_leaves_a_finished_command_alone():
    proc = spawn_group(python("pass"))
    proc.communicate(timeout=10)
    stop_group(proc)  # the group is gone: no signal, no error
    assert proc.returncode == 0


def test_kill_running_groups_kills_the_commands_and_their_callers_never_see_the_kill(tmp_path):
    # In a process of its own (the kill holds for the rest of its life): a thread waits in run_group
    # for a command that would sleep a minute; kill_running_groups ends the command's whole group
    # (its grandchild too), and the thread never returns to report the kill as the command's failure.
    pidfile = tmp_path / "grandchild.pid"
    code = (
        "import os, threading, time\n"
        "from tts_sentinel import procgroup\n"
        f"argv, pidfile = {with_grandchild(pidfile, 'time.sleep(60)')!r}, {str(pidfile)!r}\n"
        "returned = []\n"
        "threading.Thread(target=lambda: returned.append(procgroup.run_group(argv, 120)), daemon=True).start()\n"
        "while not (os.path.exists(pidfile) and open(pidfile).read()):\n"
        "    time.sleep(0.05)\n"
        "print('killed', procgroup.kill_running_groups(), flush=True)\n"
        "time.sleep(3)\n"
        "print('returned', len(returned), flush=True)\n"
    )
    done = run_group(python(code), 60)
    out = done.output.decode()
    assert done.returncode == 0, out
    assert "killed 1" in out, out
    assert "returned 0" in out, out  # the caller is parked, not handed a failure
    assert gone(int(pidfile.read_text()))
