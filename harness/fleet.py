"""A fleet on one machine: GPU hosts as network namespaces, a Prometheus HA pair and a two-peer
Alertmanager cluster, with configs generated from the checked-in ones (through `Stack`).

The topology is the one docs/fleet.md recommends: every GPU host runs its own simulator under
supervisord, exporter and receiver, and that receiver acts only on its own host (its target
matches `instance=<host>`); both Prometheus replicas scrape every host (`instance` is the host's
name), drop their `replica` label before sending (`alert_relabel_configs`), and send to both
Alertmanager peers; both peers route each alert to the receiver of its `instance`.

Used by tests/e2e/test_fleet.py. `Fleet.stop()` stops every process and deletes every
namespace, also after a failed start.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import yaml

from tts_sentinel.harness.fleet_nodes import NODE_PORTS, FleetHost, FleetTiming, MonitoringNode, target_name
from tts_sentinel.harness.netns import FleetNetwork, remove_stale
from tts_sentinel.harness.oncall_sink import OncallSink
from tts_sentinel.harness.stack import RULES_DIR, SERVICE, StackError, find_binary, scale_rule_durations
from tts_sentinel.harness.webauth import WebAuth
from tts_sentinel.runbook_urls import with_runbook_urls

__all__ = ["Fleet", "FleetTiming", "per_host_not_healed", "target_name"]

HOST_OCTET = 11  # h1 is <subnet>.11, h2 .12, ...
MONITOR_OCTET = {"a": 101, "b": 102}


def per_host_not_healed(rule: dict[str, Any]) -> None:
    """Make the shipped TtsNotHealed (one per service) one per host: counted by service and instance,
    `target` = the receiver's target name on that host, the description listing that host's alerts."""
    rule["expr"] = ('count by (service, instance, target) (label_join(ALERTS{alertstate="firing", '
                    'severity="critical", tier=~"light|medium|heavy|derate|rollback"}, '
                    '"target", ".", "service", "instance") '
                    'unless on (target, alertname) tts_receiver_healed_alert_firing)')
    one_service = 'service=\\"%s\\"}" $labels.service'
    description = rule["annotations"]["description"]
    if one_service not in description:
        raise StackError("rules/paging.rules.yml changed: TtsNotHealed's description no longer queries by service")
    rule["annotations"]["description"] = description.replace(
        one_service, 'service=\\"%s\\",instance=\\"%s\\"}" $labels.service $labels.instance')
    rule["annotations"]["summary"] = rule["annotations"]["summary"].replace(
        "{{ $labels.service }}", "{{ $labels.service }} on {{ $labels.instance }}", 1)


class Fleet:
    """The whole fleet: `hosts` GPU hosts, monitoring nodes a and b, the on-call sink in core."""

    def __init__(self, workdir: Path, hosts: int = 3, timing: FleetTiming | None = None,
                 python: str = sys.executable, receiver_overrides: dict[str, Any] | None = None,
                 subnet: str = "10.213.0") -> None:
        self.dir = workdir.resolve()
        self.timing = timing or FleetTiming()
        self.network = FleetNetwork(subnet)
        self.web = WebAuth(self.dir)  # one user for every Prometheus and Alertmanager of the fleet
        self.monitors = {r: MonitoringNode(r, self.network.node(f"mon-{r}", octet), self.dir / f"mon-{r}",
                                           self.network, self.web)
                         for r, octet in MONITOR_OCTET.items()}
        peers = [m.alertmanager_url for m in self.monitors.values()]
        self.hosts = {f"h{i}": FleetHost(self.dir / f"h{i}", self.network.node(f"h{i}", HOST_OCTET + i - 1),
                                         self.network, peers, self.timing, python, receiver_overrides,
                                         web_auth=self.web)
                      for i in range(1, hosts + 1)}
        self.oncall: OncallSink | None = None

    @property
    def oncall_url(self) -> str:
        return f"http://{self.network.core.address}:{NODE_PORTS.oncall}/oncall"

    # -- config generation ------------------------------------------------------------------------
    def prometheus_config(self, replica: str) -> dict[str, Any]:
        """Replica `replica`: scrapes every host (instance = the host's name), evaluates the rules,
        drops its `replica` label from alerts so both replicas' copies are one alert to Alertmanager."""
        t = self.timing

        def job(name: str, port: int) -> dict[str, Any]:
            return {"job_name": name, "static_configs": [
                {"targets": [f"{h.node.address}:{port}"], "labels": {"service": SERVICE, "instance": h.name}}
                for h in self.hosts.values()]}

        return {
            "global": {"scrape_interval": f"{t.scrape_seconds:g}s", "evaluation_interval": f"{t.scrape_seconds:g}s",
                       "external_labels": {"replica": replica}},
            "rule_files": [str(self.dir / "rules" / "*.rules.yml")],
            "alerting": {
                "alert_relabel_configs": [{"action": "labeldrop", "regex": "replica"}],
                "alertmanagers": [{"static_configs": [{"targets": [
                    f"{m.node.address}:{NODE_PORTS.alertmanager}" for m in self.monitors.values()]}],
                    **self.web.client_config()}],
            },
            "scrape_configs": [job("tts-sentinel-exporter", NODE_PORTS.exporter),
                               job("tts-sentinel-receiver", NODE_PORTS.receiver)],
        }

    def alertmanager_config(self) -> dict[str, Any]:
        """rules/alertmanager.yml for the fleet: the receiver route fans out to one receiver per host
        by `instance`; an alert of no known host reaches no receiver (TtsNotHealed still pages)."""
        am = yaml.safe_load((RULES_DIR / "alertmanager.yml").read_text())
        t = self.timing
        am["route"].update(group_wait=t.group_wait, group_interval=t.group_interval, repeat_interval=t.repeat_interval)
        for route in am["route"]["routes"]:
            if route.get("receiver") == "tts-sentinel":
                route["receiver"] = "blackhole"
                route["routes"] = [{"receiver": f"tts-sentinel-{h.name}", "matchers": [f'instance="{h.name}"']}
                                   for h in self.hosts.values()]
        for rule in am.get("inhibit_rules", []):
            # Inhibitions between a host's own alerts hold on that host only; a page and TtsNotHealed
            # already meet on `target`, which is unique per host.
            if "target" not in rule.get("equal", []):
                rule["equal"] = [*rule.get("equal", []), "instance"]
        receivers = [r for r in am["receivers"] if r["name"] != "tts-sentinel"]
        for r in receivers:
            for hook in r.get("webhook_configs", []):
                hook["url"] = self.oncall_url
        for h in self.hosts.values():
            receivers.append({"name": f"tts-sentinel-{h.name}", "webhook_configs": [{
                "url": h.url("receiver", "/alerts"), "send_resolved": True, "max_alerts": 0,
                "http_config": {"authorization": {"type": "Bearer", "credentials_file": str(h.dir / "receiver.token")}},
            }]})
        am["receivers"] = receivers
        return am

    def rules(self, rules_file: Path) -> dict[str, Any]:
        """A checked-in rules file for the fleet: scaled `for:`, runbooks served by h1's receiver,
        TtsNotHealed per host with `target` = the receiver's target name on that host."""
        rules = scale_rule_durations(yaml.safe_load(rules_file.read_text()), self.timing.for_scale,
                                     self.timing.bound_scale)
        rules = with_runbook_urls(rules, next(iter(self.hosts.values())).url("receiver", "/runbooks"))
        for group in rules.get("groups", []):
            for rule in group.get("rules", []):
                if rule.get("alert") == "TtsNotHealed":
                    per_host_not_healed(rule)
        return rules

    def write_configs(self) -> None:
        """Every config of the fleet under its directory (hosts write their own at launch)."""
        (self.dir / "rules").mkdir(parents=True, exist_ok=True)
        self.web.write()
        for rules_file in sorted(RULES_DIR.glob("*.rules.yml")):
            (self.dir / "rules" / rules_file.name).write_text(yaml.safe_dump(self.rules(rules_file), sort_keys=False))
        for host in self.hosts.values():
            host.write_configs()
        for m in self.monitors.values():
            for sub in ("run", "prometheus-data", "alertmanager-data"):
                (m.dir / sub).mkdir(parents=True, exist_ok=True)
            (m.dir / "prometheus.yml").write_text(yaml.safe_dump(self.prometheus_config(m.replica), sort_keys=False))
            (m.dir / "alertmanager.yml").write_text(yaml.safe_dump(self.alertmanager_config(), sort_keys=False))

    # -- processes --------------------------------------------------------------------------------
    @contextmanager
    def client(self) -> Iterator[None]:
        """Run the calling thread in the core namespace: every address of the fleet answers there."""
        with self.network.entered():
            yield

    def start(self, timeout: float = 120.0) -> None:
        """Build the network, start every node and wait until all answer; on failure stop all and raise."""
        prometheus = find_binary("prometheus")
        alertmanager = find_binary("prometheus-alertmanager", "alertmanager")
        remove_stale()
        try:
            self.network.create()
            for node in [m.node for m in self.monitors.values()] + [h.node for h in self.hosts.values()]:
                self.network.add(node)
            self.write_configs()
            # Alertmanager first (its cluster settles meanwhile), the services, the sentinels once the
            # services answer, Prometheus last: nothing alerts about the fleet's own start-up.
            peers = [m.cluster_address for m in self.monitors.values()]
            for m in self.monitors.values():
                m.launch_alertmanager(alertmanager, peers, self.timing)
            for h in self.hosts.values():
                h.launch_service()
            with self.client():
                self.oncall = OncallSink(self.network.core.address, NODE_PORTS.oncall, self.dir / "oncall.jsonl")
                self.oncall.start()
                deadline = time.monotonic() + timeout
                for h in self.hosts.values():
                    h.wait_service(max(1.0, deadline - time.monotonic()))
                for h in self.hosts.values():
                    h.launch_sentinel()
                for h in self.hosts.values():
                    h.wait_sentinel(max(1.0, deadline - time.monotonic()))
                for m in self.monitors.values():
                    m.launch_prometheus(prometheus)
                for m in self.monitors.values():
                    _wait_http(f"{m.alertmanager_url}/-/ready", deadline, m.log("alertmanager"), self.web.auth())
                    _wait_http(f"{m.prometheus_url}/-/ready", deadline, m.log("prometheus"), self.web.auth())
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Stop every process (all nodes at once), close the sink and delete every namespace; safe to
        call twice."""
        try:
            with ThreadPoolExecutor(max_workers=len(self.hosts) + len(self.monitors)) as pool:
                stopped = [pool.submit(self._stop_host, h) for h in self.hosts.values()]
                stopped += [pool.submit(m.stop) for m in self.monitors.values()]
                for future in stopped:
                    future.result()
        finally:
            if self.oncall is not None:
                self.oncall.stop()
                self.oncall = None
            self.network.teardown()

    def _stop_host(self, host: FleetHost) -> None:
        try:
            with self.network.entered():  # its supervisord answers there: its children are stopped too
                host.stop()
        except FileNotFoundError:  # no core namespace: the network was never built, nothing runs in it
            host.stop()

    def __enter__(self) -> Fleet:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _wait_http(url: str, deadline: float, log: Path, auth: httpx.Auth | None = None,
               ok: Callable[[httpx.Response], bool] | None = None) -> None:
    while time.monotonic() < deadline:
        try:
            r = httpx.get(url, timeout=2, auth=auth)
            if r.status_code == 200 and (ok is None or ok(r)):
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    raise StackError(f"{url} not ready in time; see {log}")
