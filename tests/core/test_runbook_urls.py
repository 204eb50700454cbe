"""One base for every runbook_url; rules/, dashboards/ and deploy/ found in a checkout as in a wheel."""

from __future__ import annotations

import yaml

from tts_sentinel.runbook_urls import DEFAULT_RUNBOOK_BASE, runbook_url, with_runbook_urls
from tts_sentinel.shipped import rule_files, shipped_dir


def test_a_base_is_joined_with_the_alert_name_or_filled_in_as_a_template():
    assert runbook_url("http://recv:9465/runbooks/", "TtsSegfault") == "http://recv:9465/runbooks/TtsSegfault"
    assert runbook_url("https://wiki.example/tts#{alert}", "TtsSegfault") == "https://wiki.example/tts#TtsSegfault"


def test_every_alert_gets_its_link_and_nothing_else_changes():
    rules = {"groups": [{"name": "g", "rules": [
        {"alert": "A", "expr": "up == 0", "annotations": {"summary": "s", "runbook_url": "https://old/x#a"}},
        {"alert": "B", "expr": "up == 0"},
        {"record": "r", "expr": "up"},
    ]}]}
    out = with_runbook_urls(rules, "https://wiki/{alert}")
    a, b, r = out["groups"][0]["rules"]
    assert a["annotations"] == {"summary": "s", "runbook_url": "https://wiki/A"}
    assert b["annotations"] == {"runbook_url": "https://wiki/B"}
    assert r == {"record": "r", "expr": "up"}
    assert rules["groups"][0]["rules"][0]["annotations"]["runbook_url"] == "https://old/x#a"  # a copy


def test_shipped_folders_are_found_in_the_checkout():
    assert (shipped_dir("rules") / "runbooks.md").is_file()
    assert (shipped_dir("dashboards") / "tts-sentinel.json").is_file()
    assert {p.name for p in rule_files()} >= {"tts.rules.yml", "probes.rules.yml"}


def test_the_rules_as_checked_in_link_to_the_receivers_runbook_pages():
    for path in rule_files():
        doc = yaml.safe_load(path.read_text())
        assert doc == with_runbook_urls(doc, DEFAULT_RUNBOOK_BASE), f"{path.name}: runbook_url off the default base"
