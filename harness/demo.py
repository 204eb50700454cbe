"""`tts-sentinel demo`: the whole loop on loopback until Ctrl-C.

Starts the simulator under supervisord, the exporter, the receiver, Alertmanager
and Prometheus (`tts_sentinel.stack`), prints the URLs and how to inject a fault,
then prints what happens: alerts firing and resolving, actions the receiver takes.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx

from tts_sentinel.harness.drill import StackEndpoints, firing_alerts, journal
from tts_sentinel.harness.incidents import receiver_incidents
from tts_sentinel.harness.ports import port_is_free
from tts_sentinel.harness.stack import Ports

# The seed's and Prometheus' usual ports, used when free so the URLs look familiar.
PREFERRED = Ports(web=7860, api=8000, exporter=9464, receiver=9465, prometheus=9090, alertmanager=9093,
                  supervisord=9001, oncall=9466)


def prometheus_alerts_url(base: str, auth: httpx.Auth | None = None) -> str:
    """The alerts page of this Prometheus: `/alerts`, or `/classic/alerts` where the new UI is not built in.

    Debian's package ships only the classic UI, and its `/alerts` answers 404.
    """
    for path in ("/alerts", "/classic/alerts"):
        try:
            if httpx.get(base + path, timeout=5, auth=auth).status_code == 200:
                return base + path
        except httpx.HTTPError:
            break
    return base + "/alerts"


def pick_ports() -> Ports:
    """The preferred ports where free, random free ports elsewhere."""
    fresh = Ports()
    for name, port in vars(PREFERRED).items():
        if port_is_free(port):
            setattr(fresh, name, port)
    return fresh


def narrate(endpoints: StackEndpoints, duration: float, stopping: Callable[[], bool]) -> None:
    """Print alert and action changes once a second until `stopping()` or `duration` elapses."""
    start = time.monotonic()
    firing: set[str] = set()
    seen: dict[object, object] = {}
    while not stopping() and (duration <= 0 or time.monotonic() - start < duration):
        try:
            now = {f"{a['labels']['alertname']} (tier={a['labels'].get('tier')})"
                   for a in firing_alerts(endpoints.prometheus, endpoints.auth)}
            for name in sorted(now - firing):
                print(f"{time.strftime('%H:%M:%S')}  FIRING    {name}", flush=True)
            for name in sorted(firing - now):
                print(f"{time.strftime('%H:%M:%S')}  resolved  {name}", flush=True)
            firing = now
            for row in journal(endpoints.receiver, endpoints.token):
                if seen.get(row.get("id")) != row.get("status"):
                    seen[row.get("id")] = row.get("status")
                    print(f"{time.strftime('%H:%M:%S')}  ACTION    {_describe(row)}", flush=True)
                    if row.get("incident_id") and row.get("status") not in ("queued", "running"):
                        links = {i.get("id"): i.get("page_url") for i in
                                 receiver_incidents(endpoints.receiver, endpoints.token) or []}
                        link = links.get(row["incident_id"]) or f"{endpoints.receiver}/incidents/{row['incident_id']}"
                        print(f"{'':10}incident page: {link}", flush=True)
        except (httpx.HTTPError, ValueError, KeyError) as exc:
            print(f"{time.strftime('%H:%M:%S')}  (a part of the stack does not answer: {exc})", flush=True)
        time.sleep(1)


def _describe(row: dict[str, object]) -> str:
    keys = ("id", "tier", "target", "status", "result", "reason")
    return "  ".join(f"{k}={row[k]}" for k in keys if row.get(k) not in (None, ""))
