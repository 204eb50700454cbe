"""A fleet for real: three GPU hosts as network namespaces, a Prometheus HA pair, a two-peer
Alertmanager cluster, and a receiver on every host that acts only on its own host.

Two hosts break at the same moment (h1's web front hangs, h2's answers 500); h3 stays well.
Both Prometheus replicas fire; both Alertmanager peers deliver every notification (peer
timeout 0s: what gossip lag or a slow receiver causes in production, here on purpose); peer a
is SIGKILLed mid-incident, once both receivers act, so the resolved notifications come from b
alone. Every incident must get exactly one action, on its own host, counted from each
receiver's journal and from supervisord's own restart record; the quiet host is untouched.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from datetime import datetime
from pathlib import Path

import httpx
import pytest
from support import require_binary, wait_for

from tts_sentinel.config import load_config
from tts_sentinel.harness.drill import actions, health_probe_green, inject, journal
from tts_sentinel.harness.fleet import Fleet, FleetTiming, target_name
from tts_sentinel.harness.netns import FleetNetwork, NetworkUnavailable, our_namespaces
from tts_sentinel.harness.procstat import resident_bytes
from tts_sentinel.harness.stack import INFERENCE_PROGRAM, WEB_PROGRAM
from tts_sentinel.receiver.policy import TierPolicy

pytestmark = pytest.mark.e2e
FIGURES = Path(os.environ.get("TTS_SENTINEL_FLEET_FIGURES", "/tmp/tts-sentinel-fleet-figures.json"))
ALERT = "TtsHealthProbeFailing"
ACTING = ("light", "medium", "heavy", "derate")
FAULTS = {"h1": "hang", "h2": "error500"}  # h3: no fault
# Incidents close 3 s after their alerts resolve, so the test sees each one end; the escalation
# window stays at its default (900 s): a late copy of an alert would escalate, and be counted.
RECEIVER = {"incidents": {"quiet_seconds": 3}}


def require_network() -> None:
    try:
        FleetNetwork.check()
    except NetworkUnavailable as exc:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"{exc}; CI=true forbids skipping", pytrace=False)
        pytest.skip(str(exc))


@pytest.fixture
def fleet(tmp_path):
    require_binary("prometheus")
    require_binary("prometheus-alertmanager", "alertmanager")
    require_network()
    f = Fleet(tmp_path / "fleet", hosts=3, timing=FleetTiming(peer_timeout="0s"), receiver_overrides=RECEIVER)
    t0 = time.monotonic()
    f.start()
    f.started_seconds = time.monotonic() - t0
    yield f
    f.stop()
    assert not [n for n in our_namespaces() if n.startswith(f.network.prefix + "-")], "namespaces left behind"


def get(url: str, token: str | None = None, auth=None):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    r = httpx.get(url, headers=headers, timeout=5, auth=auth)
    r.raise_for_status()
    return r.json()


def firing_in(prometheus: str, auth) -> dict[str, float]:
    """instance -> activeAt (epoch seconds) of the firing ALERT in one replica."""
    alerts = get(f"{prometheus}/api/v1/alerts", auth=auth)["data"]["alerts"]
    return {a["labels"]["instance"]: datetime.fromisoformat(a["activeAt"].replace("Z", "+00:00")).timestamp()
            for a in alerts if a["labels"].get("alertname") == ALERT and a["state"] == "firing"}


def rss_mb(pid: int) -> float:
    """Resident memory of one process, in MiB."""
    return round(resident_bytes(pid) / 2**20, 1)


def spawned(host, program: str) -> int:
    """How many times supervisord started `program` on `host` (its own log; the harness sends its
    stdout to the same file, so every line is there twice)."""
    lines = (host.dir / "run" / "supervisord.log").read_text().splitlines()
    return len({line for line in lines if f"spawned: '{program}'" in line})


NOT_HEALED_TEST = """
rule_files: [rules/paging.rules.yml]
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
      - series: 'ALERTS{alertname="TtsHealthProbeFailing",alertstate="firing",service="qwen3-tts",instance="h1",tier="light",severity="critical"}'
        values: '1x20'
      - series: 'ALERTS{alertname="TtsCudaOutOfMemory",alertstate="firing",service="qwen3-tts",instance="h2",tier="medium",severity="critical"}'
        values: '1x20'
    alert_rule_test:
      - eval_time: 16m
        alertname: TtsNotHealed
        exp_alerts:
"""
NOT_HEALED_ALERT = """
          - exp_labels: {{service: qwen3-tts, instance: {host}, target: qwen3-tts.{host}, tier: none, severity: critical}}
            exp_annotations:
              summary: "qwen3-tts on {host} is not healed: critical alerts fire past the healing bound"
              description: "Alerts that the receiver heals have been firing on qwen3-tts longer than any restart ladder takes, and the receiver has not paged: it is down, wedged, or cannot reach Alertmanager. Firing now: {alert} (tier {tier}). Journal: tts-sentinel actions."
              runbook_url: http://10.213.0.11:9465/runbooks/TtsNotHealed
"""


def routes(config: Path, *labels: str) -> str:
    out = subprocess.run(["amtool", "config", "routes", "test", f"--config.file={config}", *labels],
                         capture_output=True, text=True, timeout=30)
    return out.stdout.strip()


def test_fleet_configs_send_each_host_to_its_own_receiver_and_page_per_host(tmp_path):
    require_binary("promtool")
    require_binary("amtool")
    fleet = Fleet(tmp_path, hosts=2, timing=FleetTiming(for_scale=1.0, bound_scale=1.0))
    fleet.write_configs()
    for replica in ("a", "b"):
        check = subprocess.run(["promtool", "check", "config", str(tmp_path / f"mon-{replica}" / "prometheus.yml")],
                               capture_output=True, text=True, timeout=60)
        assert check.returncode == 0, check.stdout + check.stderr
    am = tmp_path / "mon-a" / "alertmanager.yml"
    check = subprocess.run(["amtool", "check-config", str(am)], capture_output=True, text=True, timeout=30)
    assert check.returncode == 0, check.stdout + check.stderr
    assert routes(am, "instance=h2", "tier=light", "alertname=TtsHealthProbeFailing") == "tts-sentinel-h2,blackhole"
    assert routes(am, "instance=h1", "tier=none", "severity=critical") == "tts-sentinel-h1,oncall"
    assert routes(am, "instance=h9", "tier=light") == "blackhole,blackhole"  # no receiver there: TtsNotHealed pages
    assert routes(am, "alertname=TtsNotHealed", "instance=h1", "tier=none", "severity=critical") == "oncall"

    # One TtsNotHealed per host, its target the receiver's target name there, listing that host's alerts only.
    test = NOT_HEALED_TEST + "".join(
        NOT_HEALED_ALERT.format(host=h, alert=a, tier=t)
        for h, a, t in (("h1", "TtsHealthProbeFailing", "light"), ("h2", "TtsCudaOutOfMemory", "medium")))
    (tmp_path / "not_healed_test.yml").write_text(test)
    run = subprocess.run(["promtool", "test", "rules", "not_healed_test.yml"], cwd=tmp_path,
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stdout + run.stderr

    # Each receiver acts on its own host only, even when an alert of another host reaches it.
    for name, host in fleet.hosts.items():
        receiver = load_config(host.config_path).receiver
        assert receiver.listen_host == host.node.address
        policy = TierPolicy(receiver)
        for other in fleet.hosts:
            target = policy.target_for({"service": "qwen3-tts", "instance": other, "alertname": "TtsHealthProbeFailing"})
            assert (target.name if target else None) == (target_name(name) if other == name else None)


def test_two_hosts_fail_at_once_each_healed_once_on_its_own_host_while_a_peer_dies(fleet):
    figures: dict[str, object] = {"hosts": len(fleet.hosts), "started_seconds": round(fleet.started_seconds, 1)}
    a, b = fleet.monitors["a"], fleet.monitors["b"]
    login = fleet.web.auth()  # every Prometheus and Alertmanager of the fleet asks for it
    with fleet.client():
        def everything_up():
            for m in (a, b):
                targets = get(f"{m.prometheus_url}/api/v1/targets", auth=login)["data"]["activeTargets"]
                if len(targets) != 2 * len(fleet.hosts) or any(t["health"] != "up" for t in targets):
                    return False
                cluster = get(f"{m.alertmanager_url}/api/v2/status", auth=login)["cluster"]
                if cluster["status"] != "ready" or len(cluster["peers"]) != 2:
                    return False
            return True

        wait_for(everything_up, 60, "both replicas scraping every host, both peers in one cluster")

        def quiet():
            return not [x for m in (a, b) for x in get(f"{m.prometheus_url}/api/v1/alerts", auth=login)["data"]["alerts"]
                        if x["labels"].get("tier") in ACTING]

        wait_for(quiet, 30, "no alert that acts, pending or firing, before the faults")
        pids = {name: {p: h.program_pid(p) for p in (WEB_PROGRAM, INFERENCE_PROGRAM)}
                for name, h in fleet.hosts.items()}
        ends = {name: h.endpoints(a.prometheus_url, a.alertmanager_url) for name, h in fleet.hosts.items()}
        assert not [r for e in ends.values() for r in journal(e.receiver, e.token)], "a receiver acted before any fault"

        t0 = time.monotonic()
        for name, fault in FAULTS.items():
            inject(ends[name], fault, "web")

        def both_replicas_fire():
            seen = {m.replica: firing_in(m.prometheus_url, login) for m in (a, b)}
            return seen if all(set(FAULTS) <= set(s) for s in seen.values()) else None

        seen = wait_for(both_replicas_fire, 60, f"{ALERT} firing for h1 and h2 in both replicas")
        figures["both_replicas_firing_seconds"] = round(time.monotonic() - t0, 1)
        figures["replicas_active_at_spread_seconds"] = {
            h: round(abs(seen["a"][h] - seen["b"][h]), 2) for h in FAULTS}
        assert "h3" not in seen["a"] and "h3" not in seen["b"]

        # The replicas' copies are one alert to Alertmanager: `replica` is dropped before sending.
        in_b = [x for x in get(f"{b.alertmanager_url}/api/v2/alerts", auth=login) if x["labels"].get("alertname") == ALERT]
        assert sorted(x["labels"]["instance"] for x in in_b) == sorted(FAULTS)
        assert not any("replica" in x["labels"] for x in in_b)

        def acted():
            return all(actions(journal(ends[h].receiver, ends[h].token)) for h in FAULTS)

        wait_for(acted, 60, "the receivers of h1 and h2 to act")
        figures["both_acting_seconds"] = round(time.monotonic() - t0, 1)

        def both_peers_delivered():
            counts = {m.replica: m.notify_successes() for m in (a, b)}
            return counts if all(counts[r].get(f"tts-sentinel-{h}", 0) >= 1 for r in "ab" for h in FAULTS) else None

        before_kill = wait_for(both_peers_delivered, 30, "both peers delivering to the receivers of h1 and h2")
        a.kill("alertmanager")  # SIGKILL, mid-incident:
        assert set(FAULTS) <= set(firing_in(b.prometheus_url, login)), "the alerts resolved before the peer died"
        figures["peer_a_killed_seconds"] = round(time.monotonic() - t0, 1)

        def healed_and_closed():
            for h in FAULTS:
                rows = actions(journal(ends[h].receiver, ends[h].token))
                if not rows or rows[-1]["status"] != "succeeded" or not health_probe_green(ends[h].exporter):
                    return False
                incidents = get(f"{ends[h].receiver}/incidents", ends[h].token)
                if not incidents or any(i["closed_at"] is None for i in incidents):
                    return False
            return True

        wait_for(healed_and_closed, 90, "both incidents healed, resolved through peer b and closed")
        figures["closed_seconds"] = round(time.monotonic() - t0, 1)
        time.sleep(4)  # two group intervals: room for any late copy to arrive and be acted on
        after = b.notify_successes()

        for name, host in fleet.hosts.items():
            rows = journal(ends[name].receiver, ends[name].token)
            acts = actions(rows)
            incidents = get(f"{ends[name].receiver}/incidents", ends[name].token)
            if name not in FAULTS:
                assert acts == [] and incidents == [], f"{name} had no fault but was acted on: {acts}"
                assert host.program_pid(WEB_PROGRAM) == pids[name][WEB_PROGRAM]
                assert spawned(host, WEB_PROGRAM) == 1
                continue
            assert len(acts) == 1, f"{name}: {len(acts)} actions for one incident: {acts}"
            job = acts[0]
            assert (job["status"], job["tier"], job["target"]) == ("succeeded", "light", target_name(name))
            assert [(i["family"], i["status"], i["tiers"]) for i in incidents] == [("web_front", "healed", ["light"])]
            # supervisord's own record: the web front restarted once, inference never
            assert host.program_pid(WEB_PROGRAM) != pids[name][WEB_PROGRAM]
            assert spawned(host, WEB_PROGRAM) == 2, f"{name}: web front started {spawned(host, WEB_PROGRAM)} times"
            assert host.program_pid(INFERENCE_PROGRAM) == pids[name][INFERENCE_PROGRAM]
            assert spawned(host, INFERENCE_PROGRAM) == 1
            # both peers' copies reached this receiver: one was the job, the other a duplicate (or joined it)
            copies = len(job["alerts"]) + job["duplicates"]
            assert copies >= 2, f"{name}: the receiver saw only {copies} copy of the alert"
            # peer b alone delivered the resolved notification after a died
            assert after.get(f"tts-sentinel-{name}", 0) > before_kill["b"].get(f"tts-sentinel-{name}", 0)
            figures[name] = {"copies_received": copies, "starts_at_seen": sorted({x["startsAt"] for x in job["alerts"]}),
                             "action_seconds": round(job["finished_at"] - job["started_at"], 1)}
        figures["rss_mib"] = {f"{n}/{part}": rss_mb(h._procs[part].pid)
                              for n, h in fleet.hosts.items() for part in ("exporter", "receiver")}
        figures["deliveries_before_kill"] = before_kill
        figures["deliveries_by_b_at_end"] = after
        assert fleet.oncall is not None and fleet.oncall.pages == [], "a healed fleet pages no one"
    FIGURES.write_text(json.dumps(figures, indent=2))
    print(json.dumps(figures, indent=2))
