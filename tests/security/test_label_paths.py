"""Attack 10: with the default `label_value_pattern`, `..` and `/` never reach a command's environment.

The command still runs (the restart is not lost over a bad label); only the label stays out.
"""

from __future__ import annotations

from tests.security.conftest import alert, command_target, receiver_section


def test_path_like_labels_never_reach_the_command_but_the_command_runs(tmp_path, start_receiver):
    ops = tmp_path / "ops"
    # Window 0: each alert runs the light restart again instead of climbing the incident's ladder.
    guards = {"cooldown_seconds": {}, "budget_actions": 100, "escalation_window_seconds": 0}
    receiver = start_receiver(receiver_section(tmp_path, [command_target("t", ops)], guards=guards))
    values = ["../../etc", "..", "a/b", "/etc/passwd", "x..y", "qwen3-tts-1.2:9100"]
    for i, value in enumerate(values):
        answer = receiver.post(alert("TtsHealthProbeFailing", service="t", job=value, fingerprint=f"fp-{i}"))
        job = receiver.wait_job(answer.json()["new_jobs"][0])
        assert job["status"] == "succeeded", job
    assert ops.read_text().splitlines() == [f"web restart job={v}" for v in ["unset"] * 5 + ["qwen3-tts-1.2:9100"]]
