"""The drill profile scales the receiver's windows with the rules' `for:`; overrides merge into them."""

from __future__ import annotations

from tts_sentinel.harness.stack import Stack, Timing
from tts_sentinel.harness.timing import deep_merge, receiver_timings
from tts_sentinel.receiver.config import GuardsConfig, ReceiverConfig
from tts_sentinel.receiver.families import IncidentsConfig


def test_the_drill_profile_scales_every_receiver_window_by_the_same_factor():
    scaled = ReceiverConfig.model_validate(receiver_timings(0.1, 0.25))
    guards, incidents = GuardsConfig(), IncidentsConfig()
    assert scaled.guards.budget_window_seconds == guards.budget_window_seconds * 0.1
    assert scaled.guards.escalation_window_seconds == guards.escalation_window_seconds * 0.1
    assert scaled.guards.cooldown_seconds == {t: s * 0.1 for t, s in guards.cooldown_seconds.items()}
    assert scaled.incidents.quiet_seconds == incidents.quiet_seconds * 0.1
    assert scaled.incidents.heal_bound_seconds == incidents.heal_bound_seconds * 0.25  # a ladder's real seconds
    # what is not a span of wall time stays: the budget's count, the families
    assert scaled.guards.budget_actions == guards.budget_actions
    assert [f.name for f in scaled.incidents.families] == [f.name for f in incidents.families]


def test_the_stack_uses_the_scaled_windows_and_an_override_changes_only_what_it_names(tmp_path):
    plain = Stack(tmp_path / "a").sentinel_config()["receiver"]
    assert plain["guards"]["budget_window_seconds"] == 3600 * Timing().for_scale
    cooled = Stack(tmp_path / "b", receiver_overrides={"guards": {"cooldown_seconds": {"light": 0}}})
    receiver = cooled.sentinel_config()["receiver"]
    assert receiver["guards"]["cooldown_seconds"]["light"] == 0
    assert receiver["guards"]["cooldown_seconds"]["medium"] == 300 * Timing().for_scale
    assert receiver["guards"]["escalation_window_seconds"] == 900 * Timing().for_scale
    assert receiver["targets"][0]["name"] == "qwen3-tts"
    ReceiverConfig.model_validate(receiver)  # still a valid receiver config


def test_deep_merge_replaces_leaves_and_keeps_the_base_intact():
    base = {"a": {"b": 1, "c": [1]}, "d": 2}
    merged = deep_merge(base, {"a": {"c": [2]}, "e": {"f": 3}})
    assert merged == {"a": {"b": 1, "c": [2]}, "d": 2, "e": {"f": 3}}
    assert base == {"a": {"b": 1, "c": [1]}, "d": 2}


def test_the_healing_bound_alert_is_scaled_by_its_own_factor():
    from tts_sentinel.harness.timing import scale_rule_durations

    rules = {"groups": [{"rules": [{"alert": "TtsNotHealed", "for": "15m"}, {"alert": "X", "for": "10m"}]}]}
    scaled = scale_rule_durations(rules, 0.1, 0.25)["groups"][0]["rules"]
    assert [r["for"] for r in scaled] == ["225s", "60s"]
    assert rules["groups"][0]["rules"][0]["for"] == "15m"
