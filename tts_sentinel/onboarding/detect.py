"""What `tts-sentinel init` finds out about a running TTS service, its logs, its manager and the GPU.

Every finding carries a `why` line that ends up as a comment in the written config, so a person
reading the file sees how each value was chosen.
"""

from __future__ import annotations

import json
import re
import shutil
import xmlrpc.client
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit, urlunsplit

import httpx

from tts_sentinel.exporter.gpu import GpuCollector, GpuConfig
from tts_sentinel.managers import DockerConfig, KubernetesConfig, SupervisordConfig, SystemdConfig, supervisord_proxy

Protocol = Literal["seed", "openai", "gradio"]
Manager = Literal["supervisord", "systemd", "docker", "kubernetes"]
SEED_LOG_FILES = (("webui", "webui.log", "rename"), ("inference", "inference.log", "size"),
                  ("health", "health.log", "none"))
_TIMEOUT = 3.0


class DetectionError(Exception):
    """The service could not be recognised; the message says what to pass instead."""


@dataclass
class ServiceFacts:
    """How to probe the service: protocol, health check, synthesis endpoint, voices."""

    protocol: Protocol
    health_url: str
    # "json_ok": {"status":"ok"}; "empty": 200 with an empty body; "status": any 200 (a web page)
    health_expect: Literal["json_ok", "empty", "status"]
    speech_url: str | None
    speakers: list[str] = field(default_factory=list)
    needs_api_key: bool = False
    why: list[str] = field(default_factory=list)


@dataclass
class LogSource:
    """One log the exporter follows: a file, or a command whose stdout is the log."""

    name: str
    why: str
    path: Path | None = None
    rotation: str = "none"
    argv: list[str] = field(default_factory=list)
    history_argv: list[str] = field(default_factory=list)


@dataclass
class ManagerFacts:
    """Which process manager runs the service, and the names of its two components."""

    kind: Manager
    web: str
    inference: str
    why: str
    supervisord_url: str = SupervisordConfig().url
    namespace: str = KubernetesConfig().namespace


def _base(url: str) -> str:
    parts = urlsplit(url if "://" in url else f"http://{url}")
    if not parts.hostname:
        raise DetectionError(f"{url!r} is not a URL; pass the service's address, e.g. http://127.0.0.1:8091")
    return urlunsplit((parts.scheme, parts.netloc, parts.path.rstrip("/"), "", ""))


def _get(client: httpx.Client, url: str) -> httpx.Response | None:
    try:
        return client.get(url)
    except httpx.HTTPError:
        return None


def _json(response: httpx.Response | None) -> object:
    if response is None:
        return None
    try:
        return response.json()
    except (ValueError, json.JSONDecodeError):
        return None


def _answers_post(client: httpx.Client, url: str) -> bool:
    """True when `url` takes POST requests (any status but 404/405 to an empty JSON body)."""
    try:
        return client.post(url, json={}).status_code not in (404, 405)
    except httpx.HTTPError:
        return False


def detect_service(url: str, protocol: Protocol | None = None, api_url: str | None = None,
                   client: httpx.Client | None = None) -> ServiceFacts:
    """Recognise the service at `url` (the seed API, vLLM-Omni's OpenAI speech API, a qwen-tts Gradio demo).

    `protocol` skips the guessing; `api_url` names the seed's synthesis API when it is not at `url`.
    """
    base = _base(url)
    own = client is None
    client = client or httpx.Client(timeout=_TIMEOUT, follow_redirects=True)
    try:
        return _detect(client, base, protocol, _base(api_url) if api_url else None)
    finally:
        if own:
            client.close()


def _detect(client: httpx.Client, base: str, protocol: Protocol | None, api: str | None) -> ServiceFacts:
    health = _get(client, base + "/health")
    root = _get(client, base + "/") if health is None or health.status_code == 404 else None
    if health is None and root is None:
        raise DetectionError(f"nothing answers at {base}; start the service (or pass its real address) and retry.")
    body = _json(health)
    if protocol == "seed" or (protocol is None and health is not None and health.status_code == 200
                              and isinstance(body, dict) and body.get("status") == "ok"):
        return _seed(client, base, api)
    voices = _get(client, base + "/v1/audio/voices")
    if protocol == "openai" or (protocol is None and voices is not None and voices.status_code in (200, 401, 403)):
        return _openai(base, voices)
    page = root if root is not None else _get(client, base + "/")
    if protocol == "gradio" or (page is not None and "gradio" in page.text[:200_000].lower()):
        return ServiceFacts(
            protocol="gradio", health_url=base + "/", health_expect="status", speech_url=None,
            why=[f"{base}/ serves a Gradio page: the qwen-tts demo (qwen-tts-demo). It has no health or "
                 "speech API, so L1 checks that the page answers and L2 (synthesis) stays off."],
        )
    status = "no answer" if health is None else f"status {health.status_code}"
    raise DetectionError(
        f"{base} is not a TTS service init knows: GET /health gave {status}, GET /v1/audio/voices and the "
        "page at / did not match vLLM-Omni or a Gradio demo. Pass --protocol seed|openai|gradio."
    )


def _seed(client: httpx.Client, base: str, api: str | None) -> ServiceFacts:
    why = [f"GET {base}/health answered {{\"status\":\"ok\"}}: the seed API (web front /health, POST /tts)."]
    candidates = [api] if api else [base, _with_port(base, 8000)]
    speech = next((c + "/tts" for c in candidates if c and _answers_post(client, c + "/tts")), None)
    if speech:
        why.append(f"POST {speech} answers: L2 synthesis requests go there.")
    else:
        why.append("no POST /tts found beside it (tried " + ", ".join(c for c in candidates if c)
                   + "): L2 stays off until you set exporter.probes.synthesis.request.url (or pass --api-url).")
    return ServiceFacts("seed", base + "/health", "json_ok", speech, why=why)


def _openai(base: str, voices: httpx.Response | None) -> ServiceFacts:
    speakers: list[str] = []
    body = _json(voices)
    if isinstance(body, dict):
        listed = body.get("voices") or body.get("data") or []
        speakers = [v if isinstance(v, str) else str(v.get("name") or v.get("id") or "") for v in listed]
        speakers = [s for s in speakers if s]
    locked = voices is not None and voices.status_code in (401, 403)
    why = [f"GET {base}/v1/audio/voices answered: vLLM-Omni's OpenAI speech API "
           "(GET /health with an empty body, POST /v1/audio/speech)."]
    if locked:
        why.append("it asks for an API key: pass --api-key-file so the probes send it.")
    elif speakers:
        why.append(f"voices: {', '.join(speakers[:9])}{' ...' if len(speakers) > 9 else ''}.")
    return ServiceFacts("openai", base + "/health", "empty", base + "/v1/audio/speech", speakers, locked, why)


def _with_port(base: str, port: int) -> str | None:
    parts = urlsplit(base)
    if parts.port == port or not parts.hostname:
        return None
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return urlunsplit((parts.scheme, f"{host}:{port}", "", "", ""))


def _label(text: str) -> str:
    """A log name (`log` label value) made from a unit or program name."""
    name = re.sub(r"[^a-z0-9_]+", "_", text.lower().removesuffix(".service")).strip("_") or "service"
    return name if name[0].isalpha() or name[0] == "_" else f"log_{name}"


def detect_log_sources(files: list[tuple[str | None, Path]], log_dir: Path | None,
                       manager: ManagerFacts | None) -> list[LogSource]:
    """The logs to follow: named files, else the seed's files in `log_dir`, else what the manager keeps."""
    if files:
        return [LogSource(name or _label(path.stem), "named with --log-file", path=path,
                          rotation="size" if name in (None, "inference") else "rename")
                for name, path in files]
    if log_dir is not None:
        found = [LogSource(name, f"found in {log_dir}", path=log_dir / filename, rotation=rotation)
                 for name, filename, rotation in SEED_LOG_FILES if (log_dir / filename).is_file()]
        if found:
            return found
    if manager is None:
        return []
    units = [manager.inference] + ([manager.web] if manager.web != manager.inference else [])
    return [source for unit in units if (source := _manager_log(manager, unit)) is not None]


def _manager_log(manager: ManagerFacts, unit: str) -> LogSource | None:
    name = _label(unit)
    if manager.kind == "systemd":
        return LogSource(name, f"journald unit {unit}", argv=["journalctl", "-f", "-n", "0", "-o", "cat", "-u", unit],
                         history_argv=["journalctl", "-o", "short-iso-precise", "--no-pager", "-u", unit,
                                       "--since", "{since_local}"])
    if manager.kind == "docker":
        return LogSource(name, f"docker container {unit}", argv=["docker", "logs", "-f", "--tail", "0", unit],
                         history_argv=["docker", "logs", "--timestamps", "--since", "{since_seconds}s", unit])
    if manager.kind == "kubernetes":
        ref = f"deployment/{unit}"
        return LogSource(name, f"Kubernetes {ref}",
                         argv=["kubectl", "logs", "-f", "--tail=0", "-n", manager.namespace, ref],
                         history_argv=["kubectl", "logs", "--timestamps", "--since={since_seconds}s",
                                       "-n", manager.namespace, ref])
    path = supervisord_logfile(manager.supervisord_url, unit)
    if path is None:
        return None
    return LogSource(name, f"stdout_logfile of supervisord program {unit}", path=path, rotation="size")


def supervisord_logfile(url: str, program: str) -> Path | None:
    """Where supervisord writes `program`'s stdout, when it keeps a file for it."""
    try:
        info = supervisord_proxy(SupervisordConfig(url=url), timeout=5.0).supervisor.getProcessInfo(program)
    except (OSError, ValueError, xmlrpc.client.Error):
        return None
    path = str(info.get("stdout_logfile") or "")
    return Path(path) if path and path not in ("/dev/null", "/dev/stdout") else None


def supervisord_programs(url: str) -> list[str]:
    """The programs supervisord at `url` runs; DetectionError when it does not answer."""
    try:
        proxy = supervisord_proxy(SupervisordConfig(url=url), timeout=5.0)
        return [p["name"] for p in proxy.supervisor.getAllProcessInfo()]
    except (OSError, ValueError, xmlrpc.client.Error) as exc:
        raise DetectionError(f"supervisord does not answer at {url} ({exc}); pass --supervisord-url.") from None


_DEFAULT_UNITS: dict[str, tuple[str, str]] = {
    "supervisord": (SupervisordConfig().web_program, SupervisordConfig().inference_program),
    "systemd": (SystemdConfig().web_unit, SystemdConfig().inference_unit),
    "docker": (DockerConfig().web_container, DockerConfig().inference_container),
    "kubernetes": (KubernetesConfig().web_deployment, KubernetesConfig().inference_deployment),
}


def detect_manager(kind: Manager, web: str | None, inference: str | None,
                   supervisord_url: str | None = None, namespace: str | None = None) -> ManagerFacts:
    """The component names under `kind`; with supervisord, checked against the programs it runs."""
    default_web, default_inference = _DEFAULT_UNITS[kind]
    url = supervisord_url or SupervisordConfig().url
    ns = namespace or KubernetesConfig().namespace
    if web or inference:
        return ManagerFacts(kind, web or inference or "", inference or web or "", "named on the command line",
                            url, ns)
    if kind == "supervisord":
        programs = supervisord_programs(url)
        if len(programs) == 1:
            return ManagerFacts(kind, programs[0], programs[0], f"the only program of supervisord at {url}", url, ns)
        if default_web in programs and default_inference in programs:
            return ManagerFacts(kind, default_web, default_inference, f"programs found in supervisord at {url}",
                                url, ns)
        raise DetectionError(f"supervisord at {url} runs {', '.join(programs) or 'nothing'}; pass --unit "
                             "(one program) or --web-unit and --inference-unit.")
    return ManagerFacts(kind, default_web, default_inference, f"{kind} defaults; pass --unit if yours differ",
                        url, ns)


def detect_gpu() -> tuple[bool, str]:
    """(NVML answered, a sentence saying what was found) for this host."""
    up = next((m for m in GpuCollector(GpuConfig()).collect() if m.name == "tts_gpu_up"), None)
    sample = up.samples[0] if up is not None and up.samples else None
    if sample is not None and sample.value == 1:
        return True, "NVML answered on this host"
    reason = sample.labels.get("reason", "") if sample is not None else ""
    what = {"nvml_missing": "the NVML library (nvidia-ml-py) is not installed",
            "nvml_init": "NVML could not start: no NVIDIA driver or GPU on this host"}.get(reason, reason)
    return False, what or "NVML did not answer"


def have_binary(name: str) -> bool:
    """True when `name` is on PATH (for the comments: a log command that cannot run here)."""
    return shutil.which(name) is not None
