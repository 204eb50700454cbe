"""Doctor checks on this host: log files and commands, probe modules, the GPU, actuator targets.

Each check runs the real thing once (reads the file, starts the command, runs the prober, asks
supervisord, systemd, Docker or Kubernetes about the target) and never changes anything.
"""

from __future__ import annotations

import http.client
import os
import shutil
import signal
import subprocess
import time
import xmlrpc.client
from pathlib import Path
from urllib.parse import quote

import httpx

from tts_sentinel.exporter.gpu import GpuCollector, GpuConfig
from tts_sentinel.exporter.probes.config import ProbesConfig
from tts_sentinel.exporter.probes.registry import prober_for
from tts_sentinel.loghistory.config import LogCommandConfig, LogFileConfig, LogsConfig
from tts_sentinel.managers import supervisord_proxy
from tts_sentinel.onboarding.report import Check, fail, ok, skip
from tts_sentinel.receiver.config import TargetConfig

COMMAND_GRACE_SECONDS = 2.0
_SUPERVISORD_BAD_NAME = 10  # supervisor.xmlrpc.Faults.BAD_NAME


def _ago(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s ago"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min ago"
    return f"{seconds / 3600:.1f} h ago"


def check_log_file(source: LogFileConfig) -> Check:
    """The file exists and this user can read it."""
    what, path = f"log file {source.name}", source.path
    try:
        with open(path, "rb") as f:
            f.read(1)
            st = os.fstat(f.fileno())
    except FileNotFoundError:
        where = "its folder exists" if path.parent.is_dir() else f"{path.parent} does not exist either"
        return fail(what, f"{path}: no such file ({where})",
                    f"is the service writing there? Fix exporter.logs.files ({source.name}).path, or name the real "
                    "log with `tts-sentinel init --log-file`.")
    except IsADirectoryError:
        return fail(what, f"{path} is a folder", f"name the log file inside it in exporter.logs.files ({source.name})")
    except OSError as exc:
        return fail(what, f"{path}: cannot read ({exc.strerror or exc})",
                    "run the exporter as a user that can read it (e.g. add it to the log's group).")
    return ok(what, f"{path}: readable, {st.st_size} bytes, written {_ago(max(0.0, time.time() - st.st_mtime))}")


def check_log_command(source: LogCommandConfig, grace: float = COMMAND_GRACE_SECONDS) -> Check:
    """The command starts and keeps running (a follow command that exits at once follows nothing)."""
    what, argv = f"log command {source.name}", source.argv
    if shutil.which(argv[0]) is None:
        return fail(what, f"{argv[0]} not found on PATH", f"install {argv[0]} or fix exporter.logs.commands "
                    f"({source.name}).argv")
    try:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                start_new_session=True)
    except OSError as exc:
        return fail(what, f"cannot run {argv[0]}: {exc}", f"fix exporter.logs.commands ({source.name}).argv")
    try:
        rc = proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        rc = None
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
        proc.wait()
        err = proc.stderr.read().decode(errors="replace").strip() if proc.stderr else ""
        if proc.stderr:
            proc.stderr.close()
    shown = " ".join(argv)
    if rc is None:
        return ok(what, f"`{shown}` runs and follows")
    tail = f": {err.splitlines()[-1]}" if err else ""
    return fail(what, f"`{shown}` exited with status {rc} within {grace:g} s{tail}",
                "run the command by hand as the exporter's user; a follow command must keep running (-f).")


def check_logs(logs: LogsConfig) -> list[Check]:
    """One check per configured log file and log command."""
    checks = [check_log_file(f) for f in logs.files] + [check_log_command(c) for c in logs.commands]
    return checks or [fail("logs", "no log file or command configured", "add exporter.logs.files or commands")]


_PROBE_FIX = {
    "connection": "is the service running at that address? Fix the module's url, or start the service.",
    "timeout": "the service is hung or slow: look at its log (`tts-sentinel triage`) or raise timeout_seconds.",
    "http_status": "check the URL and, for an API key, bearer_token_file.",
    "no_baseline": "record one from the healthy service: tts-sentinel baseline.",
}


def check_probes(probes: ProbesConfig) -> list[Check]:
    """Run every enabled probe module once, as the exporter would."""
    checks = []
    for name, module in probes.all_modules().items():
        what = f"probe {name}"
        if not module.enabled:
            checks.append(skip(what, "disabled in exporter.probes"))
            continue
        try:
            result = prober_for(module.prober).run(module, probes)
        except Exception as exc:  # a prober bug is a finding, not a doctor crash
            checks.append(fail(what, f"the prober crashed: {exc!r}", f"run `tts-sentinel probe {name}` and report it"))
            continue
        if result.success:
            checks.append(ok(what, result.detail))
        else:
            reason = result.reasons[0] if result.reasons else ""
            fix = _PROBE_FIX.get(reason, f"run `tts-sentinel probe {name}` for details; check exporter.probes.{name}")
            checks.append(fail(what, f"[{','.join(result.reasons)}] {result.detail}", fix))
    return checks


def check_gpu(config: GpuConfig, nvml: object = None) -> Check:
    """NVML answers (a missing GPU is a failed check with its reason, never a crash); `nvml` for tests."""
    if not config.enabled:
        return skip("GPU (NVML)", "exporter.gpu.enabled is false")
    families = {m.name: m for m in GpuCollector(config, nvml).collect()}
    up = families["tts_gpu_up"].samples[0]
    if up.value == 1:
        names = [s.labels["name"] for s in families["tts_gpu_info"].samples] if "tts_gpu_info" in families else []
        return ok("GPU (NVML)", f"{len(names)} GPU(s): {', '.join(names)}")
    why = {"nvml_missing": "the NVML library (package nvidia-ml-py) is not installed",
           "nvml_init": "NVML could not start: no NVIDIA driver or GPU on this host",
           "nvml_query": "NVML answered but a GPU query failed"}.get(up.labels.get("reason", ""), "NVML did not answer")
    return fail("GPU (NVML)", why, "install the NVIDIA driver (nvidia-smi must work), or set exporter.gpu.enabled: "
                "false on a host without a GPU")


def _supervisord(target: TargetConfig, timeout: float) -> list[Check]:
    cfg = target.supervisord
    try:
        proxy = supervisord_proxy(cfg, timeout).supervisor
    except ValueError as exc:
        return [fail(f"target {target.name}: supervisord", str(exc), "fix the target's supervisord.password_file")]
    checks = []
    for program in dict.fromkeys((cfg.web_program, cfg.inference_program)):
        what = f"target {target.name}: supervisord {program}"
        try:
            info = proxy.getProcessInfo(program)
        except xmlrpc.client.Fault as fault:
            why = f"supervisord at {cfg.url} has no program {program}" if fault.faultCode == _SUPERVISORD_BAD_NAME \
                else f"supervisord: {fault.faultString}"
            checks.append(fail(what, why, "fix supervisord.web_program / inference_program of the target"))
            continue
        except xmlrpc.client.ProtocolError as exc:
            checks.append(fail(what, f"supervisord at {cfg.url} answered {exc.errcode} {exc.errmsg}",
                               "set the target's supervisord.username and password_file as in [inet_http_server]"))
            break
        except (OSError, xmlrpc.client.Error, http.client.HTTPException) as exc:
            checks.append(fail(what, f"supervisord at {cfg.url} unreachable: {exc}",
                               "enable [inet_http_server] in supervisord.conf, or fix supervisord.url"))
            break
        checks.append(ok(what, f"{info['statename']} (pid {info['pid']}) via {cfg.url}"))
    return checks


def _systemd(target: TargetConfig, timeout: float) -> list[Check]:
    cfg = target.systemd
    checks = []
    for unit in dict.fromkeys((cfg.web_unit, cfg.inference_unit)):
        what = f"target {target.name}: systemd {unit}"
        try:
            proc = subprocess.run([cfg.systemctl, "show", unit, "--property=LoadState,ActiveState"],
                                  capture_output=True, text=True, timeout=timeout)
        except (OSError, subprocess.TimeoutExpired) as exc:
            checks.append(fail(what, f"cannot run {cfg.systemctl}: {exc}", "install systemd or fix systemd.systemctl"))
            continue
        props = dict(line.split("=", 1) for line in proc.stdout.splitlines() if "=" in line)
        if proc.returncode != 0:
            text = (proc.stderr or proc.stdout).strip().splitlines()
            checks.append(fail(what, f"systemctl show failed: {text[-1] if text else proc.returncode}",
                               "run the receiver on the host whose systemd runs the service"))
        elif props.get("LoadState") != "loaded":
            checks.append(fail(what, f"no unit {unit} (LoadState={props.get('LoadState', '?')})",
                               "fix systemd.web_unit / inference_unit of the target (`systemctl list-units`)"))
        else:
            checks.append(ok(what, f"loaded, {props.get('ActiveState', '?')}"))
    return checks


def _docker(target: TargetConfig, timeout: float) -> list[Check]:
    cfg = target.docker
    checks = []
    transport = httpx.HTTPTransport(uds=str(cfg.socket))
    with httpx.Client(transport=transport, base_url="http://docker", timeout=timeout) as client:
        for name in dict.fromkeys((cfg.web_container, cfg.inference_container)):
            what = f"target {target.name}: docker {name}"
            try:
                resp = client.get(f"/{cfg.api_version}/containers/{quote(name, safe='')}/json")
            except httpx.HTTPError as exc:
                checks.append(fail(what, f"Docker engine at {cfg.socket} unreachable: {exc}",
                                   "start Docker, or mount the socket into the receiver (docker.socket)"))
                break
            if resp.status_code == 404:
                checks.append(fail(what, f"no container {name}", "fix docker.web_container / inference_container"))
            elif resp.status_code != 200:
                checks.append(fail(what, f"Docker answered {resp.status_code}: {resp.text[:200]}",
                                   "check the receiver's access to the Docker socket"))
            else:
                checks.append(ok(what, f"container {resp.json().get('State', {}).get('Status', '?')}"))
    return checks


def _kubernetes(target: TargetConfig, timeout: float) -> list[Check]:
    cfg = target.kubernetes
    base = f"target {target.name}: kubernetes"
    try:
        token = cfg.token_file.read_text(encoding="utf-8").strip()
    except OSError as exc:
        return [fail(base, f"cannot read the service-account token {cfg.token_file}: {exc.strerror or exc}",
                     "run the receiver in the cluster with its ServiceAccount (deploy/kubernetes), or fix token_file")]
    verify: str | bool = str(cfg.ca_file) if cfg.ca_file else True
    checks = []
    for name in dict.fromkeys((cfg.web_deployment, cfg.inference_deployment)):
        what = f"{base} {cfg.namespace}/{name}"
        path = f"/apis/apps/v1/namespaces/{quote(cfg.namespace, safe='')}/deployments/{quote(name, safe='')}"
        try:
            resp = httpx.get(cfg.api_url.rstrip("/") + path, headers={"Authorization": f"Bearer {token}"},
                             verify=verify, timeout=timeout)
        except (httpx.HTTPError, OSError) as exc:
            checks.append(fail(what, f"Kubernetes API at {cfg.api_url} unreachable: {exc}", "fix kubernetes.api_url"))
            break
        if resp.status_code == 200:
            checks.append(ok(what, "Deployment readable (restart patches it)"))
        elif resp.status_code in (401, 403):
            checks.append(fail(what, f"the API refused ({resp.status_code})", "grant the receiver's ServiceAccount "
                               "get and patch on this Deployment (deploy/kubernetes/rbac.yaml)"))
        else:
            checks.append(fail(what, f"GET {path} -> {resp.status_code}", "fix the namespace or deployment name"))
    return checks


def _command(target: TargetConfig, timeout: float) -> list[Check]:
    cfg, checks = target.command, []
    for verb in ("restart", "stop", "start", "signal"):
        argv = getattr(cfg, verb)
        if not argv:
            continue
        found = shutil.which(argv[0]) or (Path(argv[0]).is_file() and os.access(argv[0], os.X_OK))
        what = f"target {target.name}: command {verb}"
        checks.append(ok(what, f"{argv[0]} is executable") if found else
                      fail(what, f"{argv[0]} not found or not executable", f"fix command.{verb} of the target"))
    return checks or [fail(f"target {target.name}: command", "no restart/stop/start/signal argv configured",
                           "configure the command actuator's argv lists")]


ACTUATOR_CHECKS = {"supervisord": _supervisord, "systemd": _systemd, "docker": _docker,
                   "kubernetes": _kubernetes, "command": _command}


def check_targets(targets: list[TargetConfig], timeout: float = 3.0) -> list[Check]:
    """Each receiver target's actuator reaches its programs, units, containers or deployments."""
    checks = []
    for target in targets:
        if target.dry_run:
            checks.append(skip(f"target {target.name}", "dry_run: the receiver acts on nothing"))
            continue
        checks.extend(ACTUATOR_CHECKS[target.actuator](target, timeout))
    return checks
