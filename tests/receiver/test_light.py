"""Light tier end to end: real supervisord restarts the web front, L1 verification via /probe."""

from __future__ import annotations

from tests.receiver.conftest import TOKEN, alert, payload, receiver_config, wait_for


def test_light_restart_heals_web_front_once(supervisor, probe, make_receiver):
    receiver = make_receiver(receiver_config(supervisor, probe))
    web_pid = supervisor.pid("tts-webui")
    inference_pid = supervisor.pid("tts-inference")
    supervisor.inject("web", "hang")
    assert not supervisor.healthy("web")

    answer = receiver.post(payload(alert(tier="light")))
    assert answer.status_code == 202, answer.text
    job_id = answer.json()["new_jobs"][0]
    job = receiver.wait_job(job_id)

    assert job["status"] == "succeeded", job
    assert job["tier"] == "light"
    assert job["verification"]["success"] is True
    assert job["verification"]["module"] == "health"
    assert supervisor.pid("tts-webui") != web_pid, "the web front was restarted"
    assert supervisor.pid("tts-inference") == inference_pid, "inference was left alone"
    assert supervisor.healthy("web")
    assert [s["ok"] for s in job["steps"]] == [True, True]
    assert all("duration_seconds" in s for s in job["steps"])

    # Alertmanager re-sends (repeat_interval, HA peer): never a second action.
    again = receiver.post(payload(alert(tier="light")))
    assert again.status_code == 202
    assert again.json()["new_jobs"] == [] and again.json()["duplicates"] == 1
    actions = receiver.actions()
    assert [a["id"] for a in actions] == [job_id]
    assert actions[0]["duplicates"] == 1
    metrics = receiver.client.get("/metrics").text
    assert 'tts_remediation_actions_total{result="success",tier="light"} 1.0' in metrics


def test_hot_reload_sends_sigusr1_instead_of_restart(supervisor, probe, make_receiver):
    receiver = make_receiver(receiver_config(supervisor, probe, target={"hot_reload": True}))
    web_pid = supervisor.pid("tts-webui")
    supervisor.inject("web", "hang")
    job_id = receiver.post(payload(alert(tier="light"))).json()["new_jobs"][0]
    job = receiver.wait_job(job_id)
    assert job["status"] == "succeeded", job
    assert supervisor.pid("tts-webui") == web_pid, "hot reload keeps the process"
    assert supervisor.stats("web")["reloads"] == 1
    assert "signalProcess" in job["steps"][0]["output"]


def test_resolved_alerts_are_ignored_and_journal_survives_restart(supervisor, probe, make_receiver, tmp_path):
    journal = tmp_path / "shared.sqlite3"
    first = make_receiver(receiver_config(supervisor, probe), journal_path=journal)
    answer = first.post(payload(alert(tier="light", status="resolved"), status="resolved"))
    assert answer.status_code == 202 and answer.json()["resolved"] == 1 and answer.json()["new_jobs"] == []
    job_id = first.post(payload(alert(tier="light"))).json()["new_jobs"][0]
    first.wait_job(job_id)
    first.close()

    # A restarted receiver remembers the key: the same firing is never acted on twice.
    second = make_receiver(receiver_config(supervisor, probe), journal_path=journal)
    again = second.post(payload(alert(tier="light")))
    assert again.json()["new_jobs"] == [] and again.json()["duplicates"] == 1
    assert len([a for a in second.actions() if a["target"] == "qwen3-tts"]) == 1


def test_token_is_required(make_receiver):
    receiver = make_receiver(receiver_config(None, None))
    assert receiver.post(payload(alert()), token=None).status_code == 401
    assert receiver.post(payload(alert()), token=TOKEN[:-1] + "x").status_code == 401
    assert receiver.actions() == []
    assert receiver.client.get("/actions").status_code == 401, "the journal needs the token too"


def test_malformed_input_gets_a_clear_4xx(make_receiver):
    receiver = make_receiver(receiver_config(None, None))
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    bad_json = receiver.client.post("/alerts", content=b"{not json", headers=headers)
    assert bad_json.status_code == 422
    wrong_version = receiver.post({**payload(alert()), "version": "3"})
    assert wrong_version.status_code == 422
    assert any("version" in p for p in wrong_version.json()["problems"])
    long_label = receiver.post(payload(alert(extra="x" * 5000)))
    assert long_label.status_code == 422 and "extra" in long_label.json()["error"]
    too_big = receiver.client.post("/alerts", content=b" " * 2_000_000, headers=headers)
    assert too_big.status_code == 413
    assert receiver.client.get("/healthz").json() == {"status": "ok"}
    wait_for(receiver.idle, what="no job admitted")
    assert receiver.actions() == []
