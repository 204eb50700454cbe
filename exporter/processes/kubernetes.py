"""Kubernetes: the pods of each Deployment through the API (the Deployment's selector, then its pods).

One status per pod: restarts are the sum of its containers' `restartCount` (a pod's
containers are never replaced one by one, so the sum only grows while the pod lives; a
`rollout restart` makes new pods, new series, and is not counted as a crash).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx

from tts_sentinel.exporter.processes.config import KubernetesSourceConfig
from tts_sentinel.exporter.processes.source import ProcessStatus, Reading, SourceError, unix_time

CRASH_LOOP = "CrashLoopBackOff"


def label_selector(selector: dict[str, Any]) -> str:
    """A Deployment's `spec.selector` in the `labelSelector` query syntax."""
    parts = [f"{k}={v}" for k, v in sorted((selector.get("matchLabels") or {}).items())]
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], ",".join(expr.get("values") or [])
        parts.append({"In": f"{key} in ({values})", "NotIn": f"{key} notin ({values})",
                      "Exists": key, "DoesNotExist": f"!{key}"}[op])
    return ",".join(parts)


def pod_status(component: str, pod: dict[str, Any]) -> ProcessStatus:
    """One pod as the kubelet reports it."""
    status = pod.get("status") or {}
    containers = status.get("containerStatuses") or []
    waiting = [c["state"]["waiting"].get("reason", "") for c in containers if "waiting" in (c.get("state") or {})]
    running = [c["state"]["running"] for c in containers if "running" in (c.get("state") or {})]
    terminated = [t for c in containers for t in ((c.get("state") or {}).get("terminated"),
                                                   (c.get("lastState") or {}).get("terminated")) if t]
    last = max(terminated, key=lambda t: t.get("finishedAt") or "", default=None)
    starts = [s for s in (unix_time(r.get("startedAt")) for r in running) if s is not None]
    up = status.get("phase") == "Running" and bool(containers) and len(running) == len(containers)
    return ProcessStatus(
        component=component,
        name=pod["metadata"]["name"],
        up=up,
        state=CRASH_LOOP if CRASH_LOOP in waiting else (next(iter(waiting), "") or str(status.get("phase", "Unknown"))),
        restarts=sum(int(c.get("restartCount", 0)) for c in containers),
        last_exit_code=int(last["exitCode"]) if last is not None else None,
        start_time_seconds=max(starts) if starts else None,
        backoff=CRASH_LOOP in waiting,
    )


class KubernetesSource:
    """The Deployments named in `exporter.processes.kubernetes`."""

    kind = "kubernetes"
    needs_polling = False

    def __init__(self, config: KubernetesSourceConfig) -> None:
        self.config = config
        self.deployments = {"web": config.web_deployment, "inference": config.inference_deployment}

    def read(self) -> Reading:
        """Every pod of both Deployments now; a Deployment without pods reads as its own name, down."""
        try:
            token = self.config.token_file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise SourceError(
                "denied", f"cannot read the service-account token {self.config.token_file}: {exc}"
            ) from None
        verify: str | bool = str(self.config.ca_file) if self.config.ca_file else True
        try:
            with httpx.Client(base_url=self.config.api_url.rstrip("/"), verify=verify,
                              timeout=self.config.timeout_seconds,
                              headers={"Authorization": f"Bearer {token}"}) as client:
                processes = []
                for component, name in self.deployments.items():
                    processes += self._pods(client, component, name)
        except httpx.HTTPError as exc:
            raise SourceError(
                "unreachable", f"Kubernetes API at {self.config.api_url} does not answer ({exc})"
            ) from None
        return Reading(processes=processes)

    def _get(self, client: httpx.Client, path: str, what: str, component: str) -> dict[str, Any]:
        resp = client.get(path)
        if resp.status_code in (401, 403):
            raise SourceError(
                "denied", f"GET {path} -> {resp.status_code}: the service account may not get/list {what}; "
                "grant it get on deployments and list on pods in the namespace")
        if resp.status_code == 404:
            raise SourceError(
                "not_found", f"no Deployment {path.rsplit('/', 1)[-1]!r} in namespace {self.config.namespace!r}; "
                f"set exporter.processes.kubernetes.{component}_deployment")
        if resp.status_code != 200:
            raise SourceError("error", f"GET {path} -> {resp.status_code}: {resp.text[:300]}")
        try:
            return resp.json()
        except ValueError:
            raise SourceError("bad_answer", f"GET {path} did not answer JSON") from None

    def _pods(self, client: httpx.Client, component: str, deployment: str) -> list[ProcessStatus]:
        ns = quote(self.config.namespace, safe="")
        dep = self._get(client, f"/apis/apps/v1/namespaces/{ns}/deployments/{quote(deployment, safe='')}",
                        "deployments", component)
        try:
            selector = label_selector(dep["spec"]["selector"])
            pods = self._get(client, f"/api/v1/namespaces/{ns}/pods?labelSelector={quote(selector, safe='')}",
                             "pods", component)["items"]
            found = [pod_status(component, pod) for pod in pods]
        except (KeyError, TypeError, ValueError) as exc:
            raise SourceError("bad_answer", f"Deployment {deployment!r} or its pods lack {exc}") from None
        return found or [ProcessStatus(component=component, name=deployment, up=False, state="NoPods")]
