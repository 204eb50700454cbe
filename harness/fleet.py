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

import os
import signal
import subprocess
import sys
import time
import xmlrpc.client
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx
import yaml

from tts_sentinel.harness.drill import StackEndpoints
from tts_sentinel.harness.netns import FleetNetwork, Node, remove_stale
from tts_sentinel.harness.oncall_sink import OncallSink
from tts_sentinel.harness.stack import (
    RULES_DIR,
    SERVICE,
    Ports,
    Stack,
    StackError,
    Timing,
    find_binary,
    scale_rule_durations,
)
from tts_sentinel.runbook_urls import with_runbook_urls

# Every node has its own address, so every node uses the products' usual ports.
NODE_PORTS = Ports(web=7860, api=8000, exporter=9464, receiver=9465, prometheus=9090, alertmanager=9093,
                   supervisord=9001, oncall=9466)
CLUSTER_PORT = 9094
HOST_OCTET = 11  # h1 is <subnet>.11, h2 .12, ...
MONITOR_OCTET = {"a": 101, "b": 102}


@dataclass
class FleetTiming(Timing):
    """The loop's timing plus the cluster's. `group_wait` is longer than the replicas' evaluation
    spread (one scrape plus one evaluation), so each peer holds both replicas' copies of an alert,
    merged to the earliest startsAt, before its first notification."""

    group_wait: str = "3s"
    peer_timeout: str = "15s"  # Alertmanager's default; 0s makes every peer deliver every notification


def rebind(value: Any, address: str) -> Any:
    """A copy of a config with every 127.0.0.1 (listen addresses and URLs) replaced by `address`."""
    if isinstance(value, dict):
        return {k: rebind(v, address) for k, v in value.items()}
    if isinstance(value, list):
        return [rebind(v, address) for v in value]
    if isinstance(value, str):
        return value.replace("127.0.0.1", address)
    return value


def target_name(host: str) -> str:
    """The receiver's target name of the service on `host`: unique in the fleet, so pages and the
    TtsNotHealed inhibition keep hosts apart."""
    return f"{SERVICE}.{host}"


def per_host_not_healed(rule: dict[str, Any]) -> None:
    """Make the shipped TtsNotHealed (one per service) one per host: counted by service and instance,
    `target` = the receiver's target name on that host, the description listing that host's alerts."""
    rule["expr"] = ('label_join(count by (service, instance) (ALERTS{alertstate="firing", severity="critical", '
                    'tier=~"light|medium|heavy|derate"}), "target", ".", "service", "instance")')
    one_service = 'service=\\"%s\\"}" $labels.service'
    description = rule["annotations"]["description"]
    if one_service not in description:
        raise StackError("rules/paging.rules.yml changed: TtsNotHealed's description no longer queries by service")
    rule["annotations"]["description"] = description.replace(
        one_service, 'service=\\"%s\\",instance=\\"%s\\"}" $labels.service $labels.instance')
    rule["annotations"]["summary"] = rule["annotations"]["summary"].replace(
        "{{ $labels.service }}", "{{ $labels.service }} on {{ $labels.instance }}", 1)


class FleetHost(Stack):
    """One GPU host: the stack's simulator, exporter and receiver, bound to the node's address and
    run in its namespace; the receiver acts only on alerts whose `instance` is this host."""

    def __init__(self, workdir: Path, node: Node, network: FleetNetwork, alertmanager_url: str,
                 timing: Timing, python: str, receiver_overrides: dict[str, Any] | None = None) -> None:
        super().__init__(workdir, ports=replace(NODE_PORTS), timing=timing, python=python,
                         receiver_overrides=receiver_overrides)
        self.node = node
        self.network = network
        self.alertmanager_url = alertmanager_url

    @property
    def name(self) -> str:
        return self.node.name

    def url(self, part: str, path: str = "") -> str:
        """`http://ADDRESS:PORT{path}` of one part of this host."""
        return f"http://{self.node.address}:{getattr(self.ports, part)}{path}"

    def sentinel_config(self) -> dict[str, Any]:
        """The stack's config on the node's address; the one target is this host's service."""
        config = rebind(super().sentinel_config(), self.node.address)
        receiver = config["receiver"]
        # One URL only: the receiver's pager posts to a single Alertmanager (docs/fleet.md, gaps).
        receiver["alertmanager_url"] = self.alertmanager_url
        target = receiver["targets"][0]
        target["name"] = target_name(self.name)
        target["match"] = {"service": SERVICE, "instance": self.name}
        return config

    def supervisord_conf(self) -> str:
        return super().supervisord_conf().replace("127.0.0.1", self.node.address)

    def write_configs(self) -> None:
        """This host's files only: token, tts-sentinel.yml, supervisord.conf (the fleet writes the rest)."""
        for sub in ("run", "state"):
            (self.dir / sub).mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        token = self.dir / "receiver.token"
        token.write_text(self.token + "\n")
        token.chmod(0o600)
        self.config_path.write_text(yaml.safe_dump(self.sentinel_config(), sort_keys=False))
        (self.dir / "supervisord.conf").write_text(self.supervisord_conf())

    def _spawn(self, name: str, argv: list[str]) -> None:
        super()._spawn(name, self.network.argv(self.node, argv))

    def supervisor(self) -> Any:
        return xmlrpc.client.ServerProxy(self.url("supervisord", "/RPC2")).supervisor

    def launch_service(self) -> None:
        """Start supervisord, which starts the simulator's two programs."""
        self.write_configs()
        self._spawn("supervisord", [self.python, "-m", "supervisor.supervisord", "-c",
                                    str(self.dir / "supervisord.conf")])

    def launch_sentinel(self) -> None:
        """Start the exporter and the receiver (once the service answers: no alert from its start-up)."""
        cli = [self.python, "-m", "tts_sentinel.cli"]
        self._spawn("exporter", [*cli, "exporter", "--config", str(self.config_path)])
        self._spawn("receiver", [*cli, "receiver", "--config", str(self.config_path)])

    def wait_service(self, timeout: float) -> None:
        """Both simulator programs answer (call inside the fleet's core namespace)."""
        self._wait("supervisord", lambda: all(
            p["statename"] == "RUNNING" for p in self.supervisor().getAllProcessInfo()), timeout)
        self._wait("web", lambda: self._http_ok(self.url("web", "/health")), timeout)
        self._wait("api", lambda: self._http_ok(self.url("api", "/health")), timeout)

    def wait_sentinel(self, timeout: float) -> None:
        """The exporter and the receiver answer (call inside the fleet's core namespace)."""
        self._wait("exporter", lambda: self._http_ok(self.url("exporter", "/healthz")), timeout)
        self._wait("receiver", lambda: self._http_ok(self.url("receiver", "/healthz")), timeout)

    def endpoints(self, prometheus: str, alertmanager: str) -> StackEndpoints:
        """This host's endpoints for the drill functions (inject, journal, ...)."""
        return StackEndpoints(web=self.url("web"), api=self.url("api"), exporter=self.url("exporter"),
                              receiver=self.url("receiver"), prometheus=prometheus, alertmanager=alertmanager,
                              token=self.token)


class MonitoringNode:
    """One monitoring host: Prometheus replica `replica` and one Alertmanager peer."""

    def __init__(self, replica: str, node: Node, workdir: Path, network: FleetNetwork) -> None:
        self.replica = replica
        self.node = node
        self.dir = workdir
        self.network = network
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    @property
    def prometheus_url(self) -> str:
        return f"http://{self.node.address}:{NODE_PORTS.prometheus}"

    @property
    def alertmanager_url(self) -> str:
        return f"http://{self.node.address}:{NODE_PORTS.alertmanager}"

    @property
    def cluster_address(self) -> str:
        return f"{self.node.address}:{CLUSTER_PORT}"

    def log(self, name: str) -> Path:
        return self.dir / "run" / f"{name}.log"

    def spawn(self, name: str, argv: list[str]) -> None:
        """Run `argv` in this node's namespace, in its own session, output to run/NAME.log."""
        with self.log(name).open("ab") as out:
            self.procs[name] = subprocess.Popen(self.network.argv(self.node, argv), stdout=out,
                                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                                cwd=self.dir, start_new_session=True)

    def launch_alertmanager(self, alertmanager: str, peers: list[str], timing: FleetTiming) -> None:
        """Start this node's Alertmanager peer, joined to `peers`."""
        self.spawn("alertmanager", [
            alertmanager, f"--config.file={self.dir / 'alertmanager.yml'}",
            f"--storage.path={self.dir / 'alertmanager-data'}",
            f"--web.listen-address={self.node.address}:{NODE_PORTS.alertmanager}",
            f"--web.external-url={self.alertmanager_url}",
            f"--cluster.listen-address={self.cluster_address}",
            # memberlist advertises the address it listens on only when it is private; say it outright
            f"--cluster.advertise-address={self.cluster_address}",
            *[f"--cluster.peer={p}" for p in peers if p != self.cluster_address],
            f"--cluster.peer-timeout={timing.peer_timeout}",
            "--log.level=debug",  # "Notify success" lines say which peer delivered to which receiver
        ])

    def launch_prometheus(self, prometheus: str) -> None:
        """Start this node's Prometheus replica."""
        self.spawn("prometheus", [
            prometheus, f"--config.file={self.dir / 'prometheus.yml'}",
            f"--storage.tsdb.path={self.dir / 'prometheus-data'}",
            f"--web.listen-address={self.node.address}:{NODE_PORTS.prometheus}",
        ])

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        """Send `sig` to one of this node's processes and reap it."""
        proc = self.procs[name]
        if proc.poll() is None:
            os.killpg(proc.pid, sig)
            proc.wait(timeout=15)

    def stop(self) -> None:
        for name in list(self.procs):
            try:
                self.kill(name, signal.SIGTERM)
            except subprocess.TimeoutExpired:
                self.kill(name, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.procs.clear()

    def notify_successes(self) -> dict[str, int]:
        """How many notifications this Alertmanager peer delivered, per receiver (from its debug log)."""
        counts: dict[str, int] = {}
        for line in self.log("alertmanager").read_text(errors="replace").splitlines():
            if 'msg="Notify success"' in line:
                receiver = next((w.split("=", 1)[1].strip('"') for w in line.split() if w.startswith("receiver=")),
                                "?")
                counts[receiver] = counts.get(receiver, 0) + 1
        return counts


class Fleet:
    """The whole fleet: `hosts` GPU hosts, monitoring nodes a and b, the on-call sink in core."""

    def __init__(self, workdir: Path, hosts: int = 3, timing: FleetTiming | None = None,
                 python: str = sys.executable, receiver_overrides: dict[str, Any] | None = None,
                 subnet: str = "10.213.0") -> None:
        self.dir = workdir.resolve()
        self.timing = timing or FleetTiming()
        self.network = FleetNetwork(subnet)
        self.monitors = {r: MonitoringNode(r, self.network.node(f"mon-{r}", octet), self.dir / f"mon-{r}",
                                           self.network)
                         for r, octet in MONITOR_OCTET.items()}
        first_peer = self.monitors["a"].alertmanager_url
        self.hosts = {f"h{i}": FleetHost(self.dir / f"h{i}", self.network.node(f"h{i}", HOST_OCTET + i - 1),
                                         self.network, first_peer, self.timing, python, receiver_overrides)
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
                    f"{m.node.address}:{NODE_PORTS.alertmanager}" for m in self.monitors.values()]}]}],
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
        rules = scale_rule_durations(yaml.safe_load(rules_file.read_text()), self.timing.for_scale)
        rules = with_runbook_urls(rules, next(iter(self.hosts.values())).url("receiver", "/runbooks"))
        for group in rules.get("groups", []):
            for rule in group.get("rules", []):
                if rule.get("alert") == "TtsNotHealed":
                    per_host_not_healed(rule)
        return rules

    def write_configs(self) -> None:
        """Every config of the fleet under its directory (hosts write their own at launch)."""
        (self.dir / "rules").mkdir(parents=True, exist_ok=True)
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
                    _wait_http(f"{m.alertmanager_url}/-/ready", deadline, m.log("alertmanager"))
                    _wait_http(f"{m.prometheus_url}/-/ready", deadline, m.log("prometheus"))
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Stop every process, close the sink and delete every namespace; safe to call twice."""
        try:
            with self.client():
                for h in self.hosts.values():
                    h.stop()
        except OSError:  # the network was never built: nothing runs in it
            for h in self.hosts.values():
                h.stop()
        for m in self.monitors.values():
            m.stop()
        if self.oncall is not None:
            self.oncall.stop()
            self.oncall = None
        self.network.teardown()

    def __enter__(self) -> Fleet:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _wait_http(url: str, deadline: float, log: Path, ok: Callable[[httpx.Response], bool] | None = None) -> None:
    while time.monotonic() < deadline:
        try:
            r = httpx.get(url, timeout=2)
            if r.status_code == 200 and (ok is None or ok(r)):
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    raise StackError(f"{url} not ready in time; see {log}")
