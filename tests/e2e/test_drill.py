"""`tts-sentinel drill` on the real stack: it follows the incident to its end and its exit code says how it ended.

Heavy restarts are refused all week here (business hours), so a segfault's incident ends refused;
a hung engine is healed only by the escalation after the first tier, and must still exit 0; a crash
that supervisord restarts is reported as such (exit 0), not as an incident that never came.
"""

from __future__ import annotations

import json

import pytest
from support import started_stack

from tts_sentinel.cli import main
from tts_sentinel.harness.stack import Stack

pytestmark = pytest.mark.e2e
ALL_WEEK = {"timezone": "UTC", "weekdays": [0, 1, 2, 3, 4, 5, 6], "start": "00:00:00", "end": "23:59:59"}
# The drills run back to back: cooldowns between them are the receiver's business, not what this proves.
NO_COOLDOWN = {"cooldown_seconds": {"light": 0, "medium": 0, "heavy": 0, "derate": 0}}


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    yield from started_stack(Stack, tmp_path_factory.mktemp("drill"),
                             receiver_overrides={"business_hours": ALL_WEEK, "guards": NO_COOLDOWN})


def drill(stack, capsys, *args):
    code = main(["drill", *args, "--dir", str(stack.dir), "--timeout", "240", "--json"])
    result = json.loads(capsys.readouterr().out)
    print(json.dumps({k: v for k, v in result.items() if k != "actions"}, indent=1))
    return code, result


def test_a_refused_incident_exits_1_and_says_refused(stack, capsys):
    code, result = drill(stack, capsys, "segfault", "--component", "inference")
    assert result["outcome"] == "refused", result
    assert result["tiers"] == ["heavy"]
    assert "business hours" in json.dumps(result["incidents"][0])  # the refusal says why
    assert code == 1


def test_a_healed_incident_exits_0(stack, capsys):
    code, result = drill(stack, capsys, "hang", "--component", "web")
    assert result["outcome"] == "healed" and result["green_seconds"] is not None
    assert result["tiers"] == ["light"]
    assert code == 0


def test_an_incident_healed_by_an_escalation_exits_0(stack, capsys):
    # The engine hangs: only an inference restart (medium) heals it, whatever tier the receiver starts at.
    code, result = drill(stack, capsys, "hang", "--component", "inference")
    assert result["outcome"] == "healed", result
    assert result["tiers"][-1] == "medium"
    assert result["action_seconds"] <= result["green_seconds"]
    assert code == 0


def test_a_crash_restarted_by_supervisord_is_seen_journaled_and_exits_0(stack, capsys):
    # supervisord's autorestart heals a single crash: the drill reports the crash alert, the receiver's
    # journal-only record of it and green again, instead of waiting out its timeout for an incident.
    code, result = drill(stack, capsys, "crash", "--component", "web")
    assert result["outcome"] == "restarted", result
    assert result["alert"] == "TtsProcessCrashed" and result["alert_seconds"] is not None
    assert result["tiers"] == ["none"] and result["green_seconds"] is not None
    assert code == 0
