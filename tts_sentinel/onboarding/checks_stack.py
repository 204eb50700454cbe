"""Doctor checks on the monitoring loop: exporter, receiver, Prometheus and Alertmanager, over HTTP."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import yaml

from tts_sentinel.exporter.config import ExporterConfig
from tts_sentinel.onboarding.report import Check, fail, ok, skip, warn
from tts_sentinel.receiver.auth import read_token
from tts_sentinel.receiver.config import ReceiverConfig
from tts_sentinel.receiver.tiers import RESTART_LADDER, Tier
from tts_sentinel.shipped import rule_files

RECEIVER_JOB = "tts-sentinel-receiver"  # the job TtsReceiverDown (rules/receiver.rules.yml) watches
_LOOPBACK = {"127.0.0.1", "localhost", "::1", "0.0.0.0", "::"}
_MATCHER = re.compile(r'^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*(.*?)\s*$')


def _local(host: str) -> str:
    """Where to connect for a listen address (a wildcard address is reached on loopback)."""
    return "127.0.0.1" if host in ("0.0.0.0", "::", "") else host


def _same_endpoint(url: str, host: str, port: int) -> bool:
    parts = urlsplit(url)
    if parts.port != port:
        return False
    return parts.hostname == host or {parts.hostname, host} <= _LOOPBACK


def check_exporter(exporter: ExporterConfig, receiver: ReceiverConfig, client: httpx.Client) -> list[Check]:
    """The exporter answers where it listens, and the receiver verifies actions there."""
    url = f"http://{_local(exporter.listen_host)}:{exporter.listen_port}"
    checks = []
    try:
        resp = client.get(url + "/healthz")
        checks.append(ok("exporter", f"{url}/healthz answers") if resp.status_code == 200 else
                      fail("exporter", f"{url}/healthz -> {resp.status_code}", "look at the exporter's log"))
    except httpx.HTTPError as exc:
        checks.append(fail("exporter", f"not running at {url} ({exc.__class__.__name__})",
                           "start it: tts-sentinel exporter (or systemctl start tts-sentinel-exporter)"))
    if not _same_endpoint(receiver.exporter_url, _local(exporter.listen_host), exporter.listen_port):
        checks.append(fail("receiver.exporter_url", f"{receiver.exporter_url} is not the exporter at {url}",
                           f"set receiver.exporter_url: {url} (actions are verified through its /probe)"))
    return checks


def check_receiver(receiver: ReceiverConfig, client: httpx.Client) -> Check:
    """The receiver answers and accepts the configured bearer token."""
    url = f"http://{_local(receiver.listen_host)}:{receiver.listen_port}"
    if receiver.token_file is None:
        return fail("receiver", "no receiver.token_file: the receiver refuses to start without a token",
                    "create one (openssl rand -hex 32 > FILE, mode 0600) and set receiver.token_file")
    try:
        # doctor runs as root; the token belongs to the receiver's user, and a receiver that accepts
        # it below proves that user may read it. Its mode is still checked: 0600 or nothing.
        token = read_token(receiver.token_file, check_owner=False)
    except ValueError as exc:
        return fail("receiver", str(exc), "fix receiver.token_file")
    try:
        resp = client.get(url + "/actions", params={"limit": 1}, headers={"Authorization": f"Bearer {token}"})
    except httpx.HTTPError as exc:
        return fail("receiver", f"not running at {url} ({exc.__class__.__name__})",
                    "start it: tts-sentinel receiver (or systemctl start tts-sentinel-receiver)")
    if resp.status_code == 401:
        return fail("receiver", f"{url} rejects the token in {receiver.token_file}",
                    "restart the receiver after changing the token file (it reads it once, at start)")
    if resp.status_code != 200:
        return fail("receiver", f"{url}/actions -> {resp.status_code}", "look at the receiver's log")
    return ok("receiver", f"{url} accepts the token in {receiver.token_file}")


def _shipped_groups() -> set[str]:
    return {g["name"] for path in rule_files() for g in yaml.safe_load(path.read_text(encoding="utf-8"))["groups"]}


def _scrape_target(targets: list[dict[str, Any]], host: str, port: int) -> dict[str, Any] | None:
    return next((t for t in targets if _same_endpoint(t.get("scrapeUrl", ""), host, port)), None)


def check_closed(what: str, url: str, client: httpx.Client) -> Check:
    """`url` (an API path of Prometheus or Alertmanager) refuses a request without credentials."""
    try:
        status = client.get(url).status_code
    except httpx.HTTPError as exc:
        return skip(f"{what} asks for a login", f"not reachable at {url} ({exc.__class__.__name__})")
    if status == 401:
        return ok(f"{what} asks for a login", f"{url} -> 401 without credentials")
    # A warning, not a failure: most Prometheus installs start open, and the receiver still checks
    # every alert against its allowlist, budget and guards. But an open Alertmanager lets any local
    # process post an alert the receiver will act on (SECURITY.md, attack 12).
    return warn(f"{what} asks for a login",
                f"{url} -> {status} without credentials: any local process can read it or post alerts",
                "start it with --web.config.file (basic_auth_users, bcrypt hash); see SECURITY.md")


def check_prometheus(url: str, exporter: ExporterConfig, receiver: ReceiverConfig,
                     client: httpx.Client, auth: httpx.Auth | None = None) -> list[Check]:
    """Prometheus has loaded our rule groups and scrapes the exporter and the receiver with the right labels."""
    try:
        rules = _api(client, url.rstrip("/") + "/api/v1/rules", auth)["data"]["groups"]
        active = _api(client, url.rstrip("/") + "/api/v1/targets", auth)["data"]["activeTargets"]
    except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
        return [fail("Prometheus", f"no Prometheus API at {url} ({exc.__class__.__name__}: {exc})",
                     "pass --prometheus URL, or start Prometheus")]
    checks = []
    missing = sorted(_shipped_groups() - {g["name"] for g in rules})
    checks.append(fail("Prometheus rules", f"rule groups not loaded: {', '.join(missing)}",
                       "add the rules to prometheus.yml (rule_files; `tts-sentinel deploy rules --out DIR` writes "
                       "them) and reload Prometheus") if missing else
                  ok("Prometheus rules", f"all {len(_shipped_groups())} TTS Sentinel rule groups loaded"))
    needed = {k: v for t in receiver.targets for k, v in t.match.items() if not v.startswith("~")}
    for part, host, port in (("exporter", exporter.listen_host, exporter.listen_port),
                             ("receiver", receiver.listen_host, receiver.listen_port)):
        what = f"Prometheus scrapes the {part}"
        target = _scrape_target(active, _local(host), port)
        if target is None:
            checks.append(fail(what, f"no scrape target for :{port}",
                               "add the scrape job of prometheus-scrape.yml (written by init) and reload Prometheus"))
            continue
        labels = target.get("labels", {})
        wrong = {k: v for k, v in needed.items() if labels.get(k) != v}
        if target.get("health") != "up":
            checks.append(fail(what, f"{target['scrapeUrl']} is {target.get('health')}: {target.get('lastError')}",
                               f"is the {part} running and reachable from Prometheus?"))
        elif part == "exporter" and wrong:
            shown = ", ".join(f"{k}={v}" for k, v in wrong.items())
            checks.append(fail(what, f"its series lack {shown}, so no receiver target matches its alerts",
                               f"add labels: {{{shown.replace('=', ': ')}}} to the job's static_configs"))
        elif part == "receiver" and labels.get("job") != RECEIVER_JOB:
            checks.append(fail(what, f"job is {labels.get('job')!r}, TtsReceiverDown watches job={RECEIVER_JOB!r}",
                               f"name the scrape job {RECEIVER_JOB}"))
        else:
            checks.append(ok(what, f"{target['scrapeUrl']} up (job {labels.get('job')})"))
    return checks


def _parse_matcher(text: str) -> tuple[str, str, str]:
    m = _MATCHER.match(text)
    if not m:
        raise ValueError(f"cannot read matcher {text!r}")
    label, op, value = m.groups()
    if value.startswith('"'):
        value = json.loads(value)
    return label, op, value


def _matchers(route: dict[str, Any]) -> list[tuple[str, str, str]]:
    out = [_parse_matcher(m) for m in route.get("matchers") or []]
    out += [(k, "=", str(v)) for k, v in (route.get("match") or {}).items()]
    out += [(k, "=~", str(v)) for k, v in (route.get("match_re") or {}).items()]
    return out


def _matches(labels: dict[str, str], route: dict[str, Any]) -> bool:
    for label, op, value in _matchers(route):
        have = labels.get(label, "")
        hit = have == value if op in ("=", "!=") else re.fullmatch(value, have) is not None
        if hit != (op in ("=", "=~")):
            return False
    return True


def route_receivers(route: dict[str, Any], labels: dict[str, str], parent: str | None = None) -> list[str]:
    """The receivers Alertmanager's routing tree sends an alert with `labels` to (its own algorithm)."""
    receiver = route.get("receiver") or parent or ""
    found: list[str] = []
    for child in route.get("routes") or []:
        if _matches(labels, child):
            found += route_receivers(child, labels, receiver)
            if not child.get("continue", False):
                break
    return found or [receiver]


def _hook_problem(hook: dict[str, Any], receiver: ReceiverConfig, token: str | None) -> str | None:
    url = hook.get("url", "")
    host, port = _local(receiver.listen_host), receiver.listen_port
    if url != "<secret>" and not (_same_endpoint(url, host, port) and urlsplit(url).path == "/alerts"):
        return f"posts to {url}, not http://{host}:{port}/alerts"
    auth = (hook.get("http_config") or {}).get("authorization") or {}
    if not auth.get("credentials_file") and not auth.get("credentials"):
        return "sends no bearer token (http_config.authorization), so the receiver answers 401"
    file = auth.get("credentials_file")
    if file and token and Path(file).is_file():
        try:
            if Path(file).read_text(encoding="utf-8").strip() != token:
                return f"its credentials_file {file} holds another token than receiver.token_file"
        except OSError:
            pass
    return None


def _api(client: httpx.Client, url: str, auth: httpx.Auth | None) -> Any:
    resp = client.get(url, auth=auth) if auth is not None else client.get(url)
    resp.raise_for_status()  # a 401 says "credentials" in the check's line, not a KeyError
    return resp.json()


def check_alertmanager(url: str, receiver: ReceiverConfig, client: httpx.Client,
                       auth: httpx.Auth | None = None) -> Check:
    """Alertmanager's running config routes every tier to a webhook at this receiver, with the token."""
    what = "Alertmanager routes tiers"
    try:
        original = _api(client, url.rstrip("/") + "/api/v2/status", auth)["config"]["original"]
        config = yaml.safe_load(original)
    except (httpx.HTTPError, ValueError, KeyError, TypeError, yaml.YAMLError) as exc:
        return fail(what, f"no Alertmanager API at {url} ({exc.__class__.__name__}: {exc})",
                    "pass --alertmanager URL (or set receiver.alertmanager_url), or start Alertmanager")
    try:
        token = read_token(receiver.token_file, check_owner=False)
    except ValueError:
        token = None
    hooks = {r["name"]: r.get("webhook_configs") or [] for r in config.get("receivers") or []}
    service = next((t.match.get("service") for t in receiver.targets if "service" in t.match), "") or ""
    unrouted, problems, names = [], set(), set()
    for tier in (*RESTART_LADDER, Tier.DERATE, Tier.ROLLBACK, Tier.NONE):
        labels = {"alertname": "TtsDoctorCheck", "tier": tier, "severity": "critical", "service": service}
        try:
            chosen = route_receivers(config["route"], labels)
        except (ValueError, re.error, KeyError) as exc:
            return fail(what, f"cannot read the routing tree: {exc}", "check alertmanager.yml with amtool")
        good = [n for n in chosen if any(_hook_problem(h, receiver, token) is None for h in hooks.get(n, []))]
        problems |= {p for n in chosen for h in hooks.get(n, []) if (p := _hook_problem(h, receiver, token))}
        if good:
            names.update(good)
        else:
            unrouted.append(tier)
    if unrouted:
        why = f"tier {', '.join(unrouted)} reaches no webhook at this receiver"
        return fail(what, why + (f" ({'; '.join(sorted(problems))})" if problems else ""),
                    "add the route and receiver of alertmanager-route.yml (written by init) and reload Alertmanager")
    return ok(what, f"every tier reaches receiver {', '.join(sorted(names))} with the bearer token")
