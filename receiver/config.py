"""The `receiver` section of the config file.

Everything the receiver may do is declared here: which targets exist (an allowlist),
how alerts map onto them, which steps each tier runs, and the guards around them.
"""

from __future__ import annotations

import re
from datetime import time
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from tts_sentinel.managers import (
    DockerConfig,
    KubernetesConfig,
    SupervisordConfig,
    SystemdConfig,
    url_without_credentials,
)
from tts_sentinel.receiver.evidence_client import EvidenceClientConfig
from tts_sentinel.receiver.families import IncidentsConfig
from tts_sentinel.receiver.incident_page import IncidentPageConfig
from tts_sentinel.receiver.matchers import valid_matchers, valid_regex
from tts_sentinel.receiver.tiers import Tier
from tts_sentinel.receiver.versions import VersionsConfig

Component = Literal["web", "inference"]

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class CommandConfig(BaseModel):
    """Programs run with an argv list (no shell). The unit name is appended as the last argument.

    Alert labels reach the program only as environment variables `TTS_LABEL_<NAME>` for the
    names listed in `label_env`, and only when their value matches `label_value_pattern`.
    """

    model_config = ConfigDict(extra="forbid")

    restart: list[str] = Field(default_factory=list)
    stop: list[str] = Field(default_factory=list)
    start: list[str] = Field(default_factory=list)
    signal: list[str] = Field(default_factory=list)
    web_unit: str = "web"
    inference_unit: str = "inference"
    timeout_seconds: float = Field(default=60.0, gt=0)
    label_env: list[str] = Field(default_factory=list)
    # No `/` and no `..`: a label value must never read as a path (`job="../../etc"`).
    label_value_pattern: str = r"^(?!.*\.\.)[A-Za-z0-9_.:@-]{0,128}$"

    @field_validator("label_env")
    @classmethod
    def _env_names(cls, value: list[str]) -> list[str]:
        for name in value:
            if not _ENV_NAME.match(name):
                raise ValueError(f"label {name!r} cannot become an environment variable name")
        return value

    @field_validator("label_value_pattern")
    @classmethod
    def _compiles(cls, value: str) -> str:
        return valid_regex(value, "label_value_pattern")


class GpuConfig(BaseModel):
    """The GPU a target runs on, and what the receiver may do to it."""

    model_config = ConfigDict(extra="forbid")

    index: int = Field(default=0, ge=0)
    reset: bool = Field(default=False, description="reset the GPU in the medium tier (root, no process)")
    nvidia_smi: str = "nvidia-smi"
    derate_ratio: float = Field(default=0.8, gt=0, le=1, description="new limit = ratio * default limit")


class TargetConfig(BaseModel):
    """A service the receiver may act on; only alerts whose labels match reach it."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    # Empty matches every alert: only a ReceiverConfig refuses it (a lone TargetConfig is also used
    # by the doctor's reachability checks).
    match: dict[str, str] = Field(default_factory=dict, description="label -> exact value or ~regex")
    actuator: Literal["supervisord", "systemd", "docker", "command", "kubernetes"] = "supervisord"
    supervisord: SupervisordConfig = SupervisordConfig()
    systemd: SystemdConfig = SystemdConfig()
    docker: DockerConfig = DockerConfig()
    command: CommandConfig = CommandConfig()
    kubernetes: KubernetesConfig = KubernetesConfig()
    hot_reload: bool = Field(default=False, description="the web front reloads on SIGUSR1 (light tier)")
    dry_run: bool = False
    gpu: GpuConfig = GpuConfig()
    cache_dir: Path | None = Path("/tmp/qwen3-tts-cache")
    weights_dir: Path | None = Path("/opt/qwen3-tts/models")
    weights_manifest: Path | None = None
    service_config: Path | None = Path("/opt/qwen3-tts/config.yaml")
    git_dir: Path | None = Path("/opt/qwen3-tts")
    # The rollback tier: where versions live and the history of switches.
    versions: VersionsConfig = VersionsConfig()

    @field_validator("match")
    @classmethod
    def _regexes(cls, value: dict[str, str]) -> dict[str, str]:
        return valid_matchers(value)

    @model_validator(mode="after")
    def _own_history(self) -> TargetConfig:
        # Targets never share a version history (a canary or a rollback of one is not the other's).
        self.versions = self.versions.for_target(self.name)
        return self


class PolicyRule(BaseModel):
    """Overrides the alert's own tier for alerts whose labels match."""

    model_config = ConfigDict(extra="forbid")

    match: dict[str, str]
    tier: Tier

    @field_validator("match")
    @classmethod
    def _regexes(cls, value: dict[str, str]) -> dict[str, str]:
        return valid_matchers(value)


StepAction = Literal[
    "restart",
    "stop",
    "start",
    "signal",
    "reload",
    "release_gpu",
    "wait",
    "verify",
    "clear_cache",
    "derate",
    "switch_version",
    "capture",
]


class Step(BaseModel):
    """One step of a tier. `reload` = SIGUSR1 when the target supports hot reload, restart otherwise."""

    model_config = ConfigDict(extra="forbid")

    action: StepAction
    component: Literal["web", "inference", "all"] = "web"
    signal: str = "SIGUSR1"
    seconds: float = Field(default=10.0, ge=0)
    module: str = "health"
    # capture: the probes run once before the restart, so their failing clips are kept as evidence
    modules: list[str] = Field(default_factory=lambda: ["synthesis", "quality", "semantic"], max_length=8)


def _default_tiers() -> dict[Tier, list[Step]]:
    return {
        Tier.LIGHT: [Step(action="reload", component="web"), Step(action="verify", module="health")],
        Tier.MEDIUM: [
            Step(action="stop", component="inference"),
            Step(action="release_gpu"),
            Step(action="start", component="inference"),
            Step(action="wait", seconds=10.0),
            Step(action="verify", module="synthesis"),
        ],
        Tier.HEAVY: [
            Step(action="stop", component="web"),
            Step(action="stop", component="inference"),
            Step(action="clear_cache"),
            Step(action="start", component="inference"),
            Step(action="start", component="web"),
            Step(action="verify", module="synthesis"),
        ],
        Tier.DERATE: [Step(action="derate")],
        Tier.ROLLBACK: [
            Step(action="switch_version"),
            Step(action="restart", component="all"),
            Step(action="wait", seconds=10.0),
            Step(action="verify", module="synthesis"),
        ],
        Tier.NONE: [],
    }


class BusinessHoursConfig(BaseModel):
    """When a heavy restart is refused (the seed: weekdays 09:00-18:59)."""

    model_config = ConfigDict(extra="forbid")

    timezone: str = "Asia/Shanghai"
    weekdays: list[int] = Field(default_factory=lambda: [0, 1, 2, 3, 4], description="0 = Monday")
    start: time = time(9, 0)
    end: time = time(18, 59, 59)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}; use an IANA name like Asia/Shanghai") from None
        return value


class GuardsConfig(BaseModel):
    """Limits that keep remediation from becoming a restart storm."""

    model_config = ConfigDict(extra="forbid")

    cooldown_seconds: dict[str, float] = Field(
        default_factory=lambda: {"light": 60.0, "medium": 300.0, "heavy": 1800.0, "derate": 300.0, "rollback": 3600.0}
    )
    budget_actions: int = Field(default=6, ge=1, description="at most N actions per target per window")
    budget_window_seconds: float = Field(default=3600.0, gt=0)
    escalation_window_seconds: float = Field(
        default=900.0, ge=0, description="the same fault family firing again this soon after a success escalates"
    )
    max_job_attempts: int = Field(default=2, ge=1, description="runs of one job across receiver crashes")


class VerificationConfig(BaseModel):
    """How an action is verified through the exporter's blackbox-style /probe."""

    model_config = ConfigDict(extra="forbid")

    timeout_seconds: float = Field(default=60.0, gt=0)
    interval_seconds: float = Field(default=1.0, gt=0)
    request_timeout_seconds: float = Field(default=30.0, gt=0)


class RateLimitConfig(BaseModel):
    """POST /alerts per client address: a token bucket; past it, 429 with Retry-After."""

    model_config = ConfigDict(extra="forbid")

    # Alertmanager posts once per alert group and group_interval (5 m by default) and retries with
    # backoff: a burst of 100 and 10 a second carry hundreds of groups and every retry.
    requests_per_second: float = Field(default=10.0, gt=0)
    burst: int = Field(default=100, ge=1)


class ReceiverConfig(BaseModel):
    """Where the receiver listens, its token, its journal, its targets, tiers and guards."""

    model_config = ConfigDict(extra="forbid")

    listen_host: str = "127.0.0.1"
    listen_port: int = Field(default=9465, ge=1, le=65535)
    token_file: Path | None = None
    # HTTPS: where Alertmanager reaches the receiver over a network (its http_config.tls_config trusts the cert)
    tls_cert_file: Path | None = Field(default=None, description="PEM certificate (chain); serves HTTPS when set")
    tls_key_file: Path | None = Field(default=None, description="its PEM private key, mode 0600")
    journal_path: Path = Path("/var/lib/tts-sentinel/journal.sqlite3")
    retention_days: float = Field(default=90.0, gt=0, description="jobs, incidents and their alerts kept this long")
    # The allowlist: no default. An alert no target matches is counted and journaled in aggregate.
    targets: list[TargetConfig] = Field(default_factory=list)
    exporter_url: str = "http://127.0.0.1:9464"
    alertmanager_url: str | None = "http://127.0.0.1:9093"
    alertmanager_urls: list[str] = Field(
        default_factory=list,
        description="the other peers of an Alertmanager cluster: a page goes to the next when one fails",
    )
    alertmanager_username: str | None = Field(default=None, description="basic auth (Alertmanager's web config)")
    alertmanager_password_file: Path | None = Field(default=None, description="its password, in a 0600 file")
    alertmanager_token_file: Path | None = Field(default=None, description="bearer token (a proxy in front), 0600")
    rate_limit: RateLimitConfig = RateLimitConfig()
    dry_run: bool = False
    worker_process: bool = Field(
        default=True,
        description="run the jobs in a second process (a core for the HTTP front, one for the actions: "
        "receiver/split.py); false runs everything in one process",
    )
    intake_process: bool = Field(
        default=True,
        description="admit the posts in a third process (a core for the admissions' journal writes "
        "while the HTTP loop reads the next posts: receiver/intake_process.py, ~60 MiB more); "
        "false admits them in a thread of the front; ignored when worker_process is false",
    )
    front_nice: int | None = Field(
        default=-10, ge=-20, le=19,
        description="CPU priority of the front and the intake process when the worker runs apart: in a "
        "storm they answer before the jobs take the CPU (receiver/priority.py; needs root, CAP_SYS_NICE or "
        "the unit's Nice=); null leaves the nice it was given",
    )
    worker_nice: int | None = Field(
        default=0, ge=-20, le=19,
        description="CPU priority of the worker process and the commands its actions run (a service a "
        "`command` actuator starts keeps it) when the worker runs apart; null: the front's",
    )
    stop_grace_seconds: float = Field(
        default=10.0, ge=0, le=600,
        description="on SIGTERM, how long the running jobs have to end; then each is left `running` for the "
        "next start to resume from its journaled step, and the commands of its action are killed (keep "
        "it ~20 s under the unit's TimeoutStopSec)",
    )
    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    max_label_length: int = Field(default=1024, ge=16)
    max_alerts: int = Field(default=1000, ge=1)
    idempotency_retention_seconds: float = Field(
        default=7 * 86400.0, ge=3600, description="keep dedup keys at least the longest repeat_interval"
    )
    triage_since_seconds: float = Field(default=600.0, gt=0)
    policy: list[PolicyRule] = Field(default_factory=list)
    tiers: dict[Tier, list[Step]] = Field(default_factory=_default_tiers)
    guards: GuardsConfig = GuardsConfig()
    incidents: IncidentsConfig = IncidentsConfig()
    business_hours: BusinessHoursConfig = BusinessHoursConfig()
    verification: VerificationConfig = VerificationConfig()
    # GET /incidents/ID: links to Grafana/Prometheus, and how much audio evidence a page pulls
    incident_page: IncidentPageConfig = IncidentPageConfig()
    evidence: EvidenceClientConfig = EvidenceClientConfig()

    @field_validator("tiers", mode="before")
    @classmethod
    def _known_tiers(cls, value: object) -> object:
        if isinstance(value, dict):
            unknown = sorted(str(k) for k in value if k not in set(Tier))
            if unknown:
                raise ValueError(f"unknown tier(s) {unknown}; tiers are {', '.join(Tier)}")
        return value

    @field_validator("tiers")
    @classmethod
    def _complete_tiers(cls, value: dict[Tier, list[Step]]) -> dict[Tier, list[Step]]:
        # A partial `tiers:` section overrides only the tiers it names.
        merged = _default_tiers()
        merged.update(value)
        return merged

    @field_validator("exporter_url")
    @classmethod
    def _exporter_plain(cls, value: str) -> str:
        return url_without_credentials(value, "none: the exporter has no authentication (keep it on loopback)") or value

    @field_validator("alertmanager_url")
    @classmethod
    def _alertmanager_plain(cls, value: str | None) -> str | None:
        return url_without_credentials(
            value, "`alertmanager_username` and `alertmanager_password_file` (or `alertmanager_token_file`)"
        )

    @field_validator("alertmanager_urls")
    @classmethod
    def _alertmanager_peers_plain(cls, value: list[str]) -> list[str]:
        how = "`alertmanager_username` and `alertmanager_password_file` (or `alertmanager_token_file`)"
        return [url_without_credentials(url, how) or url for url in value]

    @property
    def alertmanager_peers(self) -> list[str]:
        """Every Alertmanager a page may go to, in the order they are tried."""
        peers = [self.alertmanager_url] if self.alertmanager_url else []
        return peers + [url for url in self.alertmanager_urls if url not in peers]

    @model_validator(mode="after")
    def _tls_pair(self) -> ReceiverConfig:
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            raise ValueError("set both `tls_cert_file` and `tls_key_file` (HTTPS), or neither (plain HTTP)")
        return self

    @model_validator(mode="after")
    def _alertmanager_credentials(self) -> ReceiverConfig:
        if (self.alertmanager_username is None) != (self.alertmanager_password_file is None):
            raise ValueError("set both `alertmanager_username` and `alertmanager_password_file`, or neither")
        if self.alertmanager_password_file is not None and self.alertmanager_token_file is not None:
            raise ValueError(
                "Alertmanager takes basic auth or a bearer token: set `alertmanager_password_file` "
                "or `alertmanager_token_file`, not both"
            )
        return self

    @field_validator("targets")
    @classmethod
    def _targets_match_something(cls, value: list[TargetConfig]) -> list[TargetConfig]:
        for target in value:
            if not target.match:
                raise ValueError(
                    f"target {target.name!r} has an empty `match`, which would act on every alert from any job; "
                    f"give it the labels of your service, e.g. `match: {{service: {target.name}}}`"
                )
        return value

    @model_validator(mode="after")
    def _unique_targets(self) -> ReceiverConfig:
        names = [t.name for t in self.targets]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"target names must be unique; repeated: {', '.join(dupes)}")
        return self
