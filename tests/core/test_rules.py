"""Rules and Alertmanager config: valid for promtool/amtool, unit-tested, and every alert actionable."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml
from support import require_binary

RULES = Path(__file__).parents[2] / "rules"
TIERS = {"light", "medium", "heavy", "derate", "none"}
SEVERITIES = {"critical", "warning", "info"}


def alerts():
    for f in sorted(RULES.glob("*.rules.yml")):
        for group in yaml.safe_load(f.read_text())["groups"]:
            for rule in group["rules"]:
                if "alert" in rule:
                    yield f.name, rule


def runbook_anchors() -> set[str]:
    text = (RULES / "runbooks.md").read_text()
    return {re.sub(r"[^a-z0-9-]", "", h.strip().lower().replace(" ", "-")) for h in re.findall(r"^#+ (.+)$", text, re.M)}


def test_promtool_check_rules():
    promtool = require_binary("promtool")
    files = [str(f) for f in sorted(RULES.glob("*.rules.yml"))]
    r = subprocess.run([promtool, "check", "rules", *files], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


@pytest.mark.parametrize("test_file", sorted((RULES / "tests").glob("*_test.yml")), ids=lambda p: p.name)
def test_promtool_unit_tests(test_file):
    promtool = require_binary("promtool")
    r = subprocess.run([promtool, "test", "rules", test_file.name], cwd=test_file.parent, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "SUCCESS" in r.stdout


def test_every_rules_file_has_a_unit_test():
    tested = set()
    for t in (RULES / "tests").glob("*_test.yml"):
        tested |= {Path(f).name for f in yaml.safe_load(t.read_text())["rule_files"]}
    assert {f.name for f in RULES.glob("*.rules.yml")} <= tested


def test_amtool_check_config():
    amtool = require_binary("amtool")
    r = subprocess.run([amtool, "check-config", str(RULES / "alertmanager.yml")], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_every_alert_carries_tier_severity_and_a_runbook_that_exists():
    anchors = runbook_anchors()
    seen = 0
    for fname, rule in alerts():
        seen += 1
        name = rule["alert"]
        assert rule["labels"]["tier"] in TIERS, (fname, name)
        assert rule["labels"]["severity"] in SEVERITIES, (fname, name)
        ann = rule["annotations"]
        assert ann["summary"] and ann["description"], (fname, name)
        assert ann["runbook_url"].endswith("#" + name.lower()), (fname, name)
        assert name.lower() in anchors, f"{name} has no section in rules/runbooks.md"
    assert seen >= 6


def test_alertmanager_sends_tiers_to_the_receiver_and_critical_to_oncall():
    am = yaml.safe_load((RULES / "alertmanager.yml").read_text())
    routes = am["route"]["routes"]
    receiver_route = next(r for r in routes if r["receiver"] == "tts-sentinel")
    assert receiver_route["continue"] is True
    oncall_route = next(r for r in routes if r["receiver"] == "oncall")
    assert oncall_route["matchers"] == ['severity="critical"']
    hook = next(r for r in am["receivers"] if r["name"] == "tts-sentinel")["webhook_configs"][0]
    assert hook["http_config"]["authorization"]["type"] == "Bearer"
    assert "credentials_file" in hook["http_config"]["authorization"]


def test_aggregations_keep_the_labels_the_receiver_matches_targets_on():
    """An alert that loses `service` matches no target and would be ignored by the receiver."""
    for fname, rule in alerts():
        for by in re.findall(r"\bby\s*\(([^)]*)\)", rule["expr"]):
            labels = {label.strip() for label in by.split(",")}
            assert "service" in labels, f"{fname}: {rule['alert']} aggregates away `service`: ({by})"
        assert "without" not in rule["expr"] or "service" not in rule["expr"].split("without")[1].split(")")[0]


def test_verify_label_names_a_built_in_probe_module():
    """`verify` tells the receiver which probe proves the fix; it must name a module the exporter has."""
    from tts_sentinel.exporter.probes.config import ProbesConfig

    modules = set(ProbesConfig().all_modules())
    verified = {rule["alert"]: rule["labels"]["verify"] for _, rule in alerts() if "verify" in rule["labels"]}
    assert verified["TtsHealthProbeFailing"] == "health"
    assert verified["TtsSynthesisUnavailable"] == "synthesis"
    assert set(verified.values()) <= modules
