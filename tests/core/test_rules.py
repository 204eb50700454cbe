"""Rules and Alertmanager config: valid for promtool/amtool, unit-tested, and every alert actionable."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml
from support import require_binary

from tts_sentinel.harness.stack import parse_duration
from tts_sentinel.receiver.families import UNCLASSIFIED, IncidentsConfig, classify
from tts_sentinel.receiver.tiers import Tier
from tts_sentinel.runbook_urls import DEFAULT_RUNBOOK_BASE, runbook_url

RULES = Path(__file__).parents[2] / "rules"
TIERS = {"light", "medium", "heavy", "derate", "rollback", "none"}
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
        assert ann["runbook_url"] == runbook_url(DEFAULT_RUNBOOK_BASE, name), (fname, name)
        assert name.lower() in anchors, f"{name} has no section in rules/runbooks.md"
    assert seen >= 6


def test_every_acting_alert_has_a_named_family_and_its_family_label_is_that_one():
    """An alert that acts goes to a family the receiver knows (not `unclassified:`: two alerts of one
    fault would open two incidents, two actions); a `family` label on it says the same family."""
    families = IncidentsConfig().families
    for name, rule in alerts():
        labels = {"alertname": rule["alert"], **rule.get("labels", {})}
        tier = Tier(labels["tier"])
        if tier is Tier.NONE:
            continue  # no incident: its family label, if any, only says where to look
        family = classify(labels, tier, None, families).name
        assert not family.startswith(UNCLASSIFIED), f"{name}: {rule['alert']} falls in no family"
        assert labels.get("family", family) == family, f"{name}: {rule['alert']} labelled {labels['family']}, filed {family}"


def test_alertmanager_posts_to_the_receiver_with_its_bearer_token():
    am = yaml.safe_load((RULES / "alertmanager.yml").read_text())
    receiver_route = next(r for r in am["route"]["routes"] if r["receiver"] == "tts-sentinel")
    assert receiver_route["continue"] is True
    hook = next(r for r in am["receivers"] if r["name"] == "tts-sentinel")["webhook_configs"][0]
    assert hook["http_config"]["authorization"]["type"] == "Bearer"
    assert "credentials_file" in hook["http_config"]["authorization"]


def routed_to(labels: dict[str, str]) -> set[str]:
    """The receivers Alertmanager sends an alert with `labels` to (`amtool config routes test`)."""
    amtool = require_binary("amtool")
    r = subprocess.run(
        [amtool, "config", "routes", "test", f"--config.file={RULES / 'alertmanager.yml'}",
         *(f"{k}={v}" for k, v in labels.items())],
        capture_output=True, text=True,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    return set(r.stdout.strip().split(","))


def receiver_pages() -> set[str]:
    """Alert names the receiver posts to Alertmanager itself (every `"Tts..."` literal under receiver/)."""
    rule_alerts = {rule["alert"] for _, rule in alerts()}
    source = "".join(f.read_text() for f in sorted((RULES.parent / "receiver").rglob("*.py")))
    return set(re.findall(r'"(Tts[A-Za-z]+)"', source)) - rule_alerts


PAGE_LABELS = {"severity": "critical", "tier": "none", "target": "qwen3-tts", "reason": "heavy_failed"}


ROUTES = [
    ("acting tier, critical: the receiver heals it, no page",
     {"alertname": "TtsHealthProbeFailing", "tier": "light", "severity": "critical", "service": "qwen3-tts"},
     {"tts-sentinel", "blackhole"}),
    ("acting tier, warning",
     {"alertname": "TtsStreamUnderflow", "tier": "light", "severity": "warning", "service": "qwen3-tts"},
     {"tts-sentinel", "blackhole"}),
    ("tier none, critical: nothing heals it, page",
     {"alertname": "TtsExporterDown", "tier": "none", "severity": "critical", "service": "qwen3-tts"},
     {"tts-sentinel", "oncall"}),
    ("tier none, warning: journal only",
     {"alertname": "TtsInvalidUnicodeInput", "tier": "none", "severity": "warning", "service": "qwen3-tts"},
     {"tts-sentinel", "blackhole"}),
    ("page posted by the receiver", {"alertname": "TtsRemediationExhausted", **PAGE_LABELS}, {"oncall"}),
    ("refusal posted by the receiver", {"alertname": "TtsRemediationRefused", **PAGE_LABELS}, {"oncall"}),
    ("backstop: not healed past the bound",
     {"alertname": "TtsNotHealed", "tier": "none", "severity": "critical", "service": "qwen3-tts",
      "target": "qwen3-tts"},
     {"oncall"}),
    ("dead-man: receiver down",
     {"alertname": "TtsReceiverDown", "tier": "none", "severity": "critical", "job": "tts-sentinel-receiver"},
     {"oncall"}),
    ("critical alert from elsewhere, no tier", {"alertname": "NodeDown", "severity": "critical"}, {"oncall"}),
    ("no labels we know: a page rather than a loss", {"alertname": "Unlabelled"}, {"oncall"}),
]


@pytest.mark.parametrize(("kind", "labels", "expected"), ROUTES, ids=[kind for kind, _, _ in ROUTES])
def test_route_of_each_kind_of_alert(kind, labels, expected):
    assert routed_to(labels) == expected, kind


def test_every_rule_alert_pages_only_when_the_receiver_cannot_heal_it():
    """Critical with an acting tier goes to the receiver only; it pages when it fails (or TtsNotHealed)."""
    acting = {"light", "medium", "heavy", "derate"}
    for fname, rule in alerts():
        labels = {"alertname": rule["alert"], "service": "qwen3-tts", **rule["labels"]}
        receivers = routed_to(labels)
        heals = labels["tier"] in acting
        assert ("oncall" in receivers) == (labels["severity"] == "critical" and not heals), (fname, receivers)
        is_page = rule["alert"] in ("TtsNotHealed", "TtsReceiverDown")
        assert ("tts-sentinel" in receivers) == (not is_page), (fname, receivers)


def test_every_page_the_receiver_posts_reaches_only_oncall_and_silences_the_backstop():
    pages = receiver_pages()
    assert {"TtsRemediationExhausted", "TtsRemediationRefused"} <= pages
    am = yaml.safe_load((RULES / "alertmanager.yml").read_text())
    anchors = runbook_anchors()
    for page in pages:
        assert routed_to({"alertname": page, **PAGE_LABELS}) == {"oncall"}, page
        assert page.lower() in anchors, f"{page} has no section in rules/runbooks.md"
        inhibits = [r for r in am["inhibit_rules"]
                    if r["target_matchers"] == ['alertname="TtsNotHealed"']
                    and re.fullmatch(r['source_matchers'][0].split('"')[1], page)]
        assert inhibits and inhibits[0]["equal"] == ["target"], f"{page} does not inhibit TtsNotHealed"


def test_receiver_down_inhibits_the_backstop_for_every_target():
    am = yaml.safe_load((RULES / "alertmanager.yml").read_text())
    rule = next(r for r in am["inhibit_rules"] if r["source_matchers"] == ['alertname="TtsReceiverDown"'])
    assert rule["target_matchers"] == ['alertname="TtsNotHealed"']
    assert not rule.get("equal")


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


def test_every_acting_tier_is_in_each_tier_regex_of_the_rules_and_the_fleet_count():
    """A tier the receiver acts on but a `tier=~"…"` selector leaves out is an incident the paging
    bound (TtsNotHealed), the receiver-down page or the fleet count never see."""
    acting = {t.value for t in Tier if t is not Tier.NONE}
    assert acting <= TIERS
    sources = [*(RULES.glob("*.rules.yml")), RULES / "alertmanager.yml", RULES.parent / "harness" / "fleet.py"]
    found = 0
    for path in sources:
        for regex in re.findall(r'tier=~\\?"([a-z|]+)\\?"', path.read_text()):
            found += 1
            assert acting <= set(regex.split("|")), f"{path.name}: tier=~\"{regex}\" misses {acting - set(regex.split('|'))}"
    assert found >= 4, "the tier selectors were found"
def _for_phrases(seconds: int) -> list[str]:
    """Ways an annotation could state a duration of `seconds`: `30s`, `5 minutes`, `24 h`..."""
    units = [(3600, ("h", "hour")), (60, ("m", "min", "minute")), (1, ("s", "sec", "second"))]
    return [rf"\bfor {seconds // size} ?{name}" for size, names in units if seconds % size == 0 for name in names]


def _text(rule: dict) -> str:
    return " ".join(v for k, v in rule["annotations"].items() if k != "runbook_url")


def test_no_annotation_states_its_rules_for_duration():
    """The drill and the demo scale every `for:` (harness.stack.scale_rule_durations): a text that says
    "failed for 30s" would be false there, and false again when an operator edits the `for:`."""
    checked = 0
    for fname, rule in alerts():
        if "for" not in rule:
            continue
        checked += 1
        seconds = round(parse_duration(rule["for"]))
        for phrase in _for_phrases(seconds):
            assert not re.search(phrase, _text(rule)), f"{fname}: {rule['alert']} states its for: ({rule['for']})"
    assert checked >= 20


def test_counted_values_are_shown_as_whole_numbers():
    """increase() extrapolates to the window's edges, so one OOM line reads 1.333: such a `$value`
    goes through printf "%.0f", never shown raw or through humanize."""
    rounded = re.compile(r'\$value \| printf \\?"%\.0f\\?"|printf \\?"%\.0f\\?" \$value')
    counted = 0
    for fname, rule in alerts():
        if "increase" not in rule["expr"] or "$value" not in _text(rule):
            continue
        counted += 1
        uses = len(re.findall(r"\$value", _text(rule)))
        assert len(rounded.findall(_text(rule))) == uses, f"{fname}: {rule['alert']} shows an unrounded count"
    assert counted >= 10
