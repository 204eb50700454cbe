"""Kubernetes manifests from one source: the workloads in `deploy/kubernetes/`, the alerts in `rules/`.

`tts-sentinel deploy kubernetes` writes them all into one folder with a kustomization: the checked-in
DaemonSet, Deployment, Services and RBAC (namespace, image and the Role's deployment names filled in),
plus what is generated here so it cannot drift: the config as a ConfigMap, the PrometheusRule (the
groups of `rules/*.rules.yml`, runbook links under one base) and the PodMonitor/ServiceMonitor.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tts_sentinel.onboarding.configfile import InitPlan, render_config
from tts_sentinel.onboarding.detect import ManagerFacts, ServiceFacts
from tts_sentinel.runbook_urls import with_runbook_urls
from tts_sentinel.shipped import rule_files, shipped_dir

NAME = "tts-sentinel"
LABELS = {"app.kubernetes.io/name": NAME}
TOKEN_FILE = Path("/run/secrets/tts-sentinel/receiver.token")  # the Secret's mount in receiver.yaml
JOBS = {"exporter": "tts-sentinel-exporter", "receiver": "tts-sentinel-receiver"}  # the rules' up{job=...}


@dataclass
class KubernetesPlan:
    """What the manifests are made for."""

    namespace: str = "default"
    image: str = "tts-sentinel:latest"
    service: str = "qwen3-tts"
    tts_url: str = "http://qwen3-tts-inference:8091"
    web_deployment: str = "qwen3-tts-inference"
    inference_deployment: str = "qwen3-tts-inference"
    runbook_base: str | None = None
    config_text: str | None = None


def default_config(plan: KubernetesPlan) -> str:
    """A starting config for the cluster: vLLM-Omni behind `tts_url`, the Kubernetes actuator."""
    facts = ServiceFacts("openai", plan.tts_url + "/health", "empty", plan.tts_url + "/v1/audio/speech",
                         why=["written by `tts-sentinel deploy kubernetes`: vLLM-Omni assumed behind --tts-url."])
    manager = ManagerFacts("kubernetes", plan.web_deployment, plan.inference_deployment,
                           "the receiver's ServiceAccount may restart these (rbac.yaml)", namespace=plan.namespace)
    init = InitPlan(url=plan.tts_url, written_by="tts-sentinel deploy kubernetes", service=facts, logs=[],
                    manager=manager, service_name=plan.service,
                    token_file=TOKEN_FILE, listen_host="0.0.0.0", exporter_url=f"http://{JOBS['exporter']}:9464",
                    alertmanager_url="http://alertmanager-operated.monitoring.svc:9093",
                    gpu=True, gpu_why="the DaemonSet runs on GPU nodes",
                    config_path=Path("/etc/tts-sentinel/config.yml"))
    init.notes.append("logs: the TTS pods' files are under /var/log/pods (mounted read-only); add them to "
                      "exporter.logs.files.")
    return render_config(init)


def _meta(name: str, namespace: str, component: str | None = None) -> dict[str, Any]:
    labels = dict(LABELS, **({"app.kubernetes.io/component": component} if component else {}))
    return {"name": name, "namespace": namespace, "labels": labels}


def _workloads(plan: KubernetesPlan) -> dict[str, list[dict[str, Any]]]:
    out = {}
    for path in sorted((shipped_dir("deploy") / "kubernetes").glob("*.yaml")):
        docs = [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d]
        for doc in docs:
            doc["metadata"]["namespace"] = plan.namespace
            for container in doc.get("spec", {}).get("template", {}).get("spec", {}).get("containers", []):
                container["image"] = plan.image
            if doc["kind"] == "Role":
                doc["rules"][0]["resourceNames"] = sorted({plan.web_deployment, plan.inference_deployment})
        out[path.name] = docs
    return out


def prometheus_rule(plan: KubernetesPlan) -> dict[str, Any]:
    """Every group of the shipped rule files, in file order, with runbook links under the base."""
    base = plan.runbook_base or f"http://{JOBS['receiver']}.{plan.namespace}.svc:9465/runbooks"
    groups = [g for path in rule_files()
              for g in with_runbook_urls(yaml.safe_load(path.read_text(encoding="utf-8")), base)["groups"]]
    return {"apiVersion": "monitoring.coreos.com/v1", "kind": "PrometheusRule",
            "metadata": _meta(NAME, plan.namespace), "spec": {"groups": groups}}


def _relabel(part: str, service: str) -> list[dict[str, Any]]:
    # `job` is what the rules' up{job=...} expect; `service` is what the receiver's targets match
    return [{"action": "replace", "targetLabel": "job", "replacement": JOBS[part]},
            {"action": "replace", "targetLabel": "service", "replacement": service}]


def monitors(plan: KubernetesPlan) -> list[dict[str, Any]]:
    """A PodMonitor for the exporter's pods (one per GPU node) and a ServiceMonitor for the receiver."""
    def selector(part: str) -> dict[str, Any]:
        return {"matchLabels": dict(LABELS, **{"app.kubernetes.io/component": part})}

    return [
        {"apiVersion": "monitoring.coreos.com/v1", "kind": "PodMonitor",
         "metadata": _meta(JOBS["exporter"], plan.namespace, "exporter"),
         "spec": {"selector": selector("exporter"), "podMetricsEndpoints": [
             {"port": "metrics", "path": "/metrics", "interval": "15s",
              "relabelings": _relabel("exporter", plan.service)}]}},
        {"apiVersion": "monitoring.coreos.com/v1", "kind": "ServiceMonitor",
         "metadata": _meta(JOBS["receiver"], plan.namespace, "receiver"),
         "spec": {"selector": selector("receiver"), "endpoints": [
             {"port": "webhook", "path": "/metrics", "interval": "30s",
              "relabelings": _relabel("receiver", plan.service)}]}},
    ]


def manifests(plan: KubernetesPlan) -> dict[str, list[dict[str, Any]]]:
    """File name -> the documents it holds, kustomization.yaml included."""
    files = _workloads(plan)
    config = plan.config_text if plan.config_text is not None else default_config(plan)
    files["config.yaml"] = [{"apiVersion": "v1", "kind": "ConfigMap",
                             "metadata": _meta(f"{NAME}-config", plan.namespace), "data": {"config.yml": config}}]
    files["prometheusrule.yaml"] = [prometheus_rule(plan)]
    files["monitors.yaml"] = monitors(plan)
    files["kustomization.yaml"] = [{"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
                                    "namespace": plan.namespace, "resources": sorted(files)}]
    return files


class _Dumper(yaml.SafeDumper):
    """Multi-line strings (the config in the ConfigMap) as literal blocks a person can read."""


_Dumper.add_representer(str, lambda dumper, value: dumper.represent_scalar(
    "tag:yaml.org,2002:str", value, style="|" if "\n" in value else None))


def dump(docs: list[dict[str, Any]]) -> str:
    """YAML documents as written to disk (block style, keys in their order)."""
    return "---\n".join(yaml.dump(d, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=120) for d in docs)
