"""The nodes of a fleet: a GPU host (the stack's service, exporter and receiver in its own network
namespace, acting only on its own `instance`) and a monitoring host (a Prometheus replica and an
Alertmanager peer). `harness/fleet.py` puts them together.
"""

from __future__ import annotations

import os
import signal
import subprocess
import xmlrpc.client
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import yaml

from tts_sentinel.harness.drill import StackEndpoints
from tts_sentinel.harness.netns import FleetNetwork, Node
from tts_sentinel.harness.stack import SERVICE, Ports, Stack, Timing
from tts_sentinel.harness.webauth import WebAuth

# Every node has its own address, so every node uses the products' usual ports.
NODE_PORTS = Ports(web=7860, api=8000, exporter=9464, receiver=9465, prometheus=9090, alertmanager=9093,
                   supervisord=9001, oncall=9466)
CLUSTER_PORT = 9094


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


class FleetHost(Stack):
    """One GPU host: the stack's simulator, exporter and receiver, bound to the node's address and
    run in its namespace; the receiver acts only on alerts whose `instance` is this host."""

    def __init__(self, workdir: Path, node: Node, network: FleetNetwork, alertmanager_urls: list[str],
                 timing: Timing, python: str, receiver_overrides: dict[str, Any] | None = None,
                 web_auth: WebAuth | None = None) -> None:
        super().__init__(workdir, ports=replace(NODE_PORTS), timing=timing, python=python,
                         receiver_overrides=receiver_overrides, web_auth=web_auth)
        self.node = node
        self.network = network
        self.alertmanager_urls = alertmanager_urls

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
        # Every peer of the cluster: a page goes to the next when one is down (docs/fleet.md).
        receiver["alertmanager_url"] = self.alertmanager_urls[0]
        receiver["alertmanager_urls"] = self.alertmanager_urls[1:]
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
                              token=self.token, auth=self.web.auth())


class MonitoringNode:
    """One monitoring host: Prometheus replica `replica` and one Alertmanager peer."""

    def __init__(self, replica: str, node: Node, workdir: Path, network: FleetNetwork, web: WebAuth) -> None:
        self.replica = replica
        self.web = web  # the fleet's one user for every Prometheus and Alertmanager
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
            f"--web.config.file={self.web.config_file}",
        ])

    def launch_prometheus(self, prometheus: str) -> None:
        """Start this node's Prometheus replica."""
        self.spawn("prometheus", [
            prometheus, f"--config.file={self.dir / 'prometheus.yml'}",
            f"--storage.tsdb.path={self.dir / 'prometheus-data'}",
            f"--web.listen-address={self.node.address}:{NODE_PORTS.prometheus}",
            f"--web.config.file={self.web.config_file}",
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
