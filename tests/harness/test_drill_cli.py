"""`tts-sentinel drill` exit codes without a stack: 2 for a usage error or no running demo.

Exit 0 (healed, also by an escalation) and 1 (refused, paged) are proved on the real stack in
tests/e2e/test_drill.py.
"""

from __future__ import annotations

import json

import pytest

from tts_sentinel.cli import main
from tts_sentinel.harness.drill import DrillResult
from tts_sentinel.harness.stack import Ports


def test_an_unknown_fault_is_a_usage_error(tmp_path, capsys):
    assert main(["drill", "nosuch", "--dir", str(tmp_path)]) == 2
    assert "unknown fault 'nosuch'" in capsys.readouterr().out


def test_a_fault_for_the_wrong_component_is_a_usage_error(tmp_path, capsys):
    assert main(["drill", "oom", "--component", "web", "--dir", str(tmp_path)]) == 2
    assert "applies to inference, not to web" in capsys.readouterr().out


def test_no_running_demo_exits_2_and_says_how_to_start_one(tmp_path, capsys):
    assert main(["drill", "hang", "--dir", str(tmp_path)]) == 2
    assert "make demo" in capsys.readouterr().out


def test_a_demo_that_does_not_answer_exits_2(tmp_path, capsys):
    # stack.json of a demo that has stopped: nothing listens on its ports any more
    (tmp_path / "stack.json").write_text(json.dumps({"ports": vars(Ports()), "dir": str(tmp_path)}))
    (tmp_path / "receiver.token").write_text("t" * 40)
    assert main(["drill", "hang", "--dir", str(tmp_path), "--timeout", "5"]) == 2
    assert "does not answer" in capsys.readouterr().out


@pytest.mark.parametrize("outcome, green, healed", [
    ("healed", 12.0, True), ("healed", None, False), ("paged", None, False), ("refused", None, False),
    ("open", None, False), ("no action", None, False),
])
def test_only_a_healed_incident_with_a_green_probe_counts_as_healed(outcome, green, healed):
    result = DrillResult("hang", "web", outcome=outcome, green_seconds=green, tiers=["light", "medium"])
    assert result.healed is healed
    assert "light -> medium" in result.summary()
