"""Policy and admission without real actions: overrides, single action per target, escalation joining,
503 only when the job could not be persisted, triage verdict in the journal."""

from __future__ import annotations

from datetime import datetime

from tests.receiver.conftest import alert, payload, receiver_config
from tts_sentinel.receiver import rootcause
from tts_sentinel.receiver.journal import Journal
from tts_sentinel.receiver.payload import WebhookPayload
from tts_sentinel.receiver.policy import TierPolicy, labels_match
from tts_sentinel.receiver.service import ReceiverService
from tts_sentinel.receiver.tiers import Tier


def test_matchers_exact_and_regex():
    assert labels_match(
        {"service": "qwen3-tts", "instance": "~gpu-0[12]:.*"}, {"service": "qwen3-tts", "instance": "gpu-01:7860"}
    )
    assert not labels_match({"instance": "~gpu-0[12]"}, {"instance": "gpu-01:7860"}), "regex matches whole value"
    assert not labels_match({"service": "qwen3-tts"}, {})
    assert Tier.LIGHT.escalation() is Tier.MEDIUM
    assert Tier.HEAVY.escalation() is None and Tier.DERATE.escalation() is None
    assert Tier.HEAVY.rank > Tier.MEDIUM.rank > Tier.LIGHT.rank > Tier.DERATE.rank > Tier.NONE.rank


def test_policy_rule_overrides_the_alert_tier():
    cfg = receiver_config(None, None, policy=[{"match": {"alertname": "TtsCudaOom"}, "tier": "heavy"}])
    policy = TierPolicy(cfg)
    assert policy.tier_for({"alertname": "TtsCudaOom", "tier": "medium"})[0] == "heavy"
    assert policy.tier_for({"alertname": "Other", "tier": "medium"}) == ("medium", "alert label tier=medium")
    assert policy.tier_for({"alertname": "Other", "tier": "reboot"})[0] == "none"


def test_remembered_decisions_follow_the_labels_and_stay_bounded():
    targets = [
        {"name": f"svc-{i}", "match": {"service": f"svc-{i}"}, "actuator": "command", "cache_dir": None,
         "weights_dir": None, "service_config": None, "git_dir": None}
        for i in range(3)
    ]
    cfg = receiver_config(None, None, targets=targets,
                          policy=[{"match": {"alertname": "~Oom.*"}, "tier": "heavy"}])
    policy = TierPolicy(cfg, cache_size=8)
    for round_ in range(3):  # the same label sets again: the same answers as the first time
        for n in range(30):
            labels = {"service": f"svc-{n % 4}", "alertname": "OomKill" if n % 2 else "Probe", "tier": "light"}
            target = policy.target_for(labels)
            assert (target.name if target else None) == (f"svc-{n % 4}" if n % 4 < 3 else None), (round_, n)
            assert policy.tier_for(labels)[0] == ("heavy" if n % 2 else "light")
    # Label order does not change the answer; the cache never holds more than its size.
    assert policy.target_for({"tier": "light", "service": "svc-2"}).name == "svc-2"
    assert policy._target.cache_info().currsize <= 8 and policy._tier.cache_info().currsize <= 8


def test_override_reaches_the_journal(make_receiver):
    cfg = receiver_config(None, None, dry_run=True, policy=[{"match": {"alertname": "TtsCudaOom"}, "tier": "heavy"}])
    receiver = make_receiver(cfg)
    job = receiver.wait_job(receiver.post(payload(alert("TtsCudaOom", tier="medium"))).json()["new_jobs"][0])
    assert job["tier"] == "heavy" and "policy rule #0" in job["reason"]


def test_escalation_joins_a_queued_job_instead_of_a_second_action(tmp_path):
    journal = Journal(tmp_path / "j.sqlite3")
    with journal.transaction() as j:
        queued, joined = j.place_job("t", Tier.LIGHT, "L1", [{"fingerprint": "a"}])
        assert not joined
        again, joined = j.place_job("t", Tier.MEDIUM, "escalated", [{"fingerprint": "a"}], escalated_from=99)
    assert joined and again == queued
    row = journal.job(queued)
    assert row.tier is Tier.MEDIUM and row.escalated_from == 99 and len(row.alerts) == 2


def test_journal_failure_answers_503_so_alertmanager_retries(make_receiver):
    receiver = make_receiver(receiver_config(None, None, dry_run=True))
    receiver.service.workers.stop()
    receiver.service.journal.close()
    answer = receiver.post(payload(alert()))
    assert answer.status_code == 503 and "retry" in answer.json()["error"]
    assert receiver.client.get("/healthz").status_code == 503


def test_triage_verdict_is_journaled_with_the_call_contract(make_receiver, monkeypatch):
    calls = []

    def diagnose(config, since_seconds, now=None):  # loghistory.triage.diagnose's signature
        calls.append((config, since_seconds, now))
        return {"root_cause": None, "events": 3}

    monkeypatch.setattr(rootcause, "diagnose", diagnose)
    logs = object()
    receiver = make_receiver(receiver_config(None, None, dry_run=True), logs_config=logs)
    before = datetime.now()
    job = receiver.wait_job(receiver.post(payload(alert(tier="medium"))).json()["new_jobs"][0])
    assert job["triage"] == {"root_cause": None, "events": 3}
    # Admission asks for the new incident's window (to decide its family), the runner again at
    # action time: both windows start the configured lead before the incident opened.
    lead = receiver.service.config.incidents.triage_lead_seconds
    assert len(calls) == 2 and all(c[0] is logs for c in calls)
    assert all(lead <= since < lead + 30 and now >= before for _, since, now in calls), calls


def test_when_triage_fails_the_journal_says_why_and_the_action_runs(make_receiver, monkeypatch):
    def broken(config, since_seconds, now=None):
        raise OSError("log folder vanished")

    monkeypatch.setattr(rootcause, "diagnose", broken)
    receiver = make_receiver(receiver_config(None, None, dry_run=True), logs_config=object())
    job = receiver.wait_job(receiver.post(payload(alert(tier="light"))).json()["new_jobs"][0])
    assert job["triage"]["available"] is False and "log folder vanished" in job["triage"]["note"]
    assert job["status"] == "dry_run"


def test_real_triage_names_the_root_cause_in_the_journal(make_receiver, tmp_path):
    from datetime import datetime, timedelta

    from tts_sentinel.loghistory.config import LogsConfig

    now = datetime.now()

    def line(seconds_ago, text):
        return (now - timedelta(seconds=seconds_ago)).strftime("%Y-%m-%d %H:%M:%S,%f")[:-3] + " [ERROR] " + text + "\n"

    (tmp_path / "inference.log").write_text(line(30, "[CUDA] Out of memory on device 0"))
    (tmp_path / "health.log").write_text(line(20, "Health check failed: audio output silent for 8s"))
    logs = LogsConfig.model_validate(
        {
            "files": [
                {"name": "inference", "path": str(tmp_path / "inference.log"), "rotation": "size"},
                {"name": "health", "path": str(tmp_path / "health.log"), "rotation": "none"},
            ]
        }
    )
    receiver = make_receiver(receiver_config(None, None, dry_run=True), logs_config=logs)
    job = receiver.wait_job(receiver.post(payload(alert("TtsAudioSilent", tier="medium"))).json()["new_jobs"][0])
    assert job["triage"]["root_cause"]["pattern"] == "cuda_oom"
    assert [d["pattern"] for d in job["triage"]["derived"]] == ["audio_silent"]


def test_the_first_matching_target_in_config_order_wins_whatever_its_matchers():
    def target(name, match):
        return {"name": name, "match": match, "actuator": "command", "cache_dir": None, "weights_dir": None,
                "service_config": None, "git_dir": None}

    cfg = receiver_config(None, None, targets=[
        target("exact-two", {"service": "svc-1", "host": "h2"}),
        target("regex", {"service": "~svc-[12]"}),
        target("exact", {"service": "svc-1"}),
        target("host-only", {"host": "h3"}),
        target("any", {"env": "~.*"}),
    ])
    policy = TierPolicy(cfg)
    assert policy.target_for({"service": "svc-1", "host": "h2"}).name == "exact-two"
    assert policy.target_for({"service": "svc-1", "host": "h1"}).name == "regex", "exact-two needs host h2"
    assert policy.target_for({"service": "svc-3", "host": "h3"}).name == "host-only"
    assert policy.target_for({"service": "svc-3", "env": "prod"}).name == "any"
    assert policy.target_for({"service": "svc-3"}) is None


def test_new_incidents_of_one_batch_share_one_triage_read(tmp_path, monkeypatch):
    calls = []

    def diagnose(config, since_seconds, now=None):
        calls.append((since_seconds, now))
        return {"root_cause": None, "events": 0}

    monkeypatch.setattr(rootcause, "diagnose", diagnose)

    def target(i):
        return {"name": f"svc-{i}", "match": {"service": f"svc-{i}"}, "actuator": "command", "cache_dir": None,
                "weights_dir": None, "service_config": None, "git_dir": None}

    service = ReceiverService(receiver_config(None, None, dry_run=True, targets=[target(i) for i in range(3)]),
                              "t" * 20, journal_path=tmp_path / "j.sqlite3", logs_config=object())
    posts = [WebhookPayload.model_validate(payload(alert(tier="medium", service=f"svc-{i}", fingerprint=f"f{i}")))
             for i in range(3)]
    batch_clock = 1_800_000_000.0
    admitted = [service.admission.admit(p, now=batch_clock) for p in posts]
    assert [len(a.new_jobs) for a in admitted] == [1, 1, 1], "three targets, three incidents"
    assert len(calls) == 1, "one window (no earlier job on any target), read once for the batch"
    service.admission.admit(WebhookPayload.model_validate(payload(alert(tier="medium", service="svc-0",
                                                                         fingerprint="f9"))), now=batch_clock + 5)
    assert len(calls) == 2, "another batch, another clock: read again"
    service.journal.close()
