"""Config of the probe modules (the `exporter.probes` section).

Four modules with fixed names, one per prober kind (`health` L1, `synthesis` L2,
`semantic` L3, `quality` seed §5.3), plus any number of extra named modules in
`modules:` that pick their prober with `prober: health|synthesis|semantic|quality|streaming`
(`streaming`: vLLM-Omni's streamed synthesis, only as an extra module).
Defaults are the seed's values; `protocol: openai` switches a request to
vLLM-Omni's OpenAI-compatible API.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import BaseModel, ConfigDict, Field, model_validator

SEED_TEXT = "你好,世界。Hello, world."
HAPPY_PROMPT = "请用开心的语气说:今天天气真好!"
SERIOUS_PROMPT = "请用严肃的语气读:系统即将重启。"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class HttpRequestConfig(_Strict):
    """What every probe request shares: headers, bearer token, timeout."""

    headers: dict[str, str] = Field(default_factory=dict)
    # A bearer token for the target; prefer the file so the secret stays out of the config.
    bearer_token: str | None = None
    bearer_token_file: Path | None = None
    timeout_seconds: float = Field(default=3.0, gt=0)

    def request_headers(self) -> dict[str, str]:
        """Configured headers plus `Authorization: Bearer ...` when a token is configured."""
        headers = dict(self.headers)
        token = self.bearer_token
        if self.bearer_token_file is not None:
            token = self.bearer_token_file.read_text(encoding="utf-8").strip()
        if token:
            headers["Authorization"] = f"Bearer {token}"
        return headers


class HealthProbeConfig(HttpRequestConfig):
    """L1: an HTTP request that must answer an expected status and body.

    Seed: GET /health -> {"status":"ok"}. vLLM-Omni: GET /health -> 200 with an empty
    body (set `expect_json: null` and `expect_empty_body: true`).
    """

    prober: Literal["health"] = "health"
    enabled: bool = True
    url: str = "http://127.0.0.1:7860/health"
    method: Literal["GET", "HEAD", "POST"] = "GET"
    interval_seconds: float = Field(default=5.0, gt=0)
    expect_status: list[int] = Field(default_factory=lambda: [200])
    expect_json: dict[str, Any] | None = Field(default_factory=lambda: {"status": "ok"})
    expect_empty_body: bool = False


class SpeechRequestConfig(HttpRequestConfig):
    """One synthesis request: seed `POST /tts {"text","lang","speaker"}` or vLLM-Omni's
    `POST /v1/audio/speech {"input","voice","language","instructions","response_format":"wav"}`."""

    protocol: Literal["seed", "openai"] = "seed"
    url: str = "http://127.0.0.1:8000/tts"
    method: Literal["POST", "PUT"] = "POST"
    timeout_seconds: float = Field(default=30.0, gt=0)
    # Merged into the JSON body as is (e.g. a model name or sampling parameters).
    extra_body: dict[str, Any] = Field(default_factory=dict)

    def body(self, text: str, lang: str, speaker: str, instructions: str = "") -> dict[str, Any]:
        """The JSON body for this protocol (non-streaming)."""
        if self.protocol == "openai":
            body: dict[str, Any] = {
                "input": text, "voice": speaker, "language": lang, "response_format": "wav",
            }
            if instructions:
                body["instructions"] = instructions
        else:
            body = {"text": text, "lang": lang, "speaker": speaker}
            if instructions:
                body["instructions"] = instructions
        body.update(self.extra_body)
        return body


class AudioLimitsConfig(_Strict):
    """What a valid L2 WAV looks like (seed §3.2, plus the runaway bound and ratios)."""

    sample_rate: int = Field(default=24000, gt=0)
    min_seconds: float = Field(default=1.2, ge=0)
    # Upper bound scaled to the text: base + per_char * characters (catches runaway generation).
    max_seconds_base: float = Field(default=2.0, ge=0)
    max_seconds_per_char: float = Field(default=0.4, gt=0)
    frame_seconds: float = Field(default=0.01, gt=0)
    # Real speech has exact-zero gaps: espeak-ng's pauses at commas and full stops are up to
    # 0.33 s of zeros once quantised to 16 bits. A longer run of all-zero frames fails.
    max_zero_run_seconds: float = Field(default=0.5, ge=0)
    silence_threshold_dbfs: float = -50.0
    max_silence_ratio: float = Field(default=0.7, ge=0, le=1)
    clipping_level: float = Field(default=0.999, gt=0, le=1)
    max_clipping_ratio: float = Field(default=0.005, ge=0, le=1)


class SynthesisTarget(_Strict):
    """One cell of the L2 matrix: a language and a speaker (the text defaults to the module's)."""

    lang: str = "zh"
    speaker: str = "Vivian"
    text: str | None = None
    instructions: str = ""


class _SpeechProbeConfig(_Strict):
    """What the probes that request speech share."""

    # Off unless configured: the request URL must point at the real API first.
    enabled: bool = False
    request: SpeechRequestConfig = SpeechRequestConfig()


class SynthesisProbeConfig(_SpeechProbeConfig):
    """L2: a real synthesis request per target; the WAV is validated with our numpy code."""

    prober: Literal["synthesis"] = "synthesis"
    interval_seconds: float = Field(default=60.0, gt=0)
    text: str = SEED_TEXT
    targets: list[SynthesisTarget] = Field(default_factory=lambda: [SynthesisTarget()], min_length=1)
    audio: AudioLimitsConfig = AudioLimitsConfig()


class StylePrompt(_Strict):
    """An L3 prompt whose F0 contour must stay close to its template."""

    text: str
    instructions: str = ""


class SemanticProbeConfig(_SpeechProbeConfig):
    """L3: F0 contour (pyworld) of styled prompts vs the baseline templates, by DTW."""

    prober: Literal["semantic"] = "semantic"
    interval_seconds: float = Field(default=3600.0, gt=0)
    lang: str = "zh"
    speaker: str = "Vivian"
    styles: dict[str, StylePrompt] = Field(default_factory=lambda: {
        "happy": StylePrompt(text=HAPPY_PROMPT), "serious": StylePrompt(text=SERIOUS_PROMPT),
    })
    f0_method: Literal["dio", "harvest"] = "dio"
    frame_period_ms: float = Field(default=5.0, gt=0)
    # Mean |z(template) - z(now)| along the DTW path; z = per-clip z-scored log-F0.
    max_dtw_distance: float = Field(default=0.35, gt=0)
    # z-scoring hides a monotone voice; its spread in semitones does not.
    min_f0_spread_semitones: float = Field(default=1.0, ge=0)
    # Sakoe-Chiba band as a fraction of the longer contour.
    dtw_window_ratio: float = Field(default=0.2, gt=0, le=1)
    report_path: Path = Path("/var/log/qwen3-tts/semantic_report.log")


class QualityProbeConfig(_SpeechProbeConfig):
    """Seed §5.3: envelope fluctuation, STOI vs the baseline recording, optional PESQ."""

    prober: Literal["quality"] = "quality"
    interval_seconds: float = Field(default=3600.0, gt=0)
    lang: str = "zh"
    speaker: str = "Vivian"
    samples: dict[str, str] = Field(default_factory=lambda: {"seed": SEED_TEXT})
    min_envelope_fluctuation: float = Field(default=0.15, ge=0)
    min_stoi: float = Field(default=0.85, ge=0, le=1)
    pesq: bool = False
    min_pesq: float = Field(default=3.2, ge=-0.5, le=4.5)


def _openai_request() -> SpeechRequestConfig:
    return SpeechRequestConfig(protocol="openai", url="http://127.0.0.1:8000/v1/audio/speech")


class StreamingProbeConfig(_SpeechProbeConfig):
    """Streamed synthesis from vLLM-Omni, per transport: time to first audio, underruns, runaway, WAV checks.

    `sse` and `audio` are `POST request.url` with `stream: true` and that `stream_format`;
    `websocket` speaks the /v1/audio/speech/stream protocol at `websocket_url` (by default the
    request URL with a ws scheme and `/stream` appended).
    """

    prober: Literal["streaming"] = "streaming"
    request: SpeechRequestConfig = Field(default_factory=_openai_request)
    interval_seconds: float = Field(default=60.0, gt=0)
    transports: list[Literal["sse", "audio", "websocket"]] = Field(
        default_factory=lambda: ["sse", "websocket"], min_length=1)
    websocket_url: str | None = None
    text: str = SEED_TEXT
    lang: str = "Auto"
    speaker: str = "Vivian"
    instructions: str = ""
    # What the server is asked for; raw PCM (SSE deltas, WebSocket frames) is read at pcm_sample_rate
    # unless the stream says otherwise (a WAV header, the WebSocket's audio.start).
    response_format: Literal["pcm", "wav"] = "pcm"
    pcm_sample_rate: int = Field(default=24000, gt=0)
    # No audio bytes for this long: `timeout` before the first audio, `stalled` after it.
    stall_timeout_seconds: float = Field(default=10.0, gt=0)
    max_first_audio_seconds: float = Field(default=5.0, gt=0)
    # Worst deficit of a real-time player started at the first chunk (vLLM-Omni's continuity
    # check uses 100 ms; a probe on a busy host needs some slack).
    max_underrun_seconds: float = Field(default=0.3, ge=0)
    # The same checks as L2 on the assembled audio; its upper bound also ends reading a runaway.
    audio: AudioLimitsConfig = AudioLimitsConfig()

    @model_validator(mode="after")
    def _speaks_openai(self) -> StreamingProbeConfig:
        if self.request.protocol != "openai":
            raise ValueError("the streaming probe speaks vLLM-Omni's API: set request.protocol: openai")
        if len(set(self.transports)) != len(self.transports):
            raise ValueError(f"transports must not repeat: {self.transports}")
        return self

    def ws_url(self) -> str:
        """The WebSocket URL: `websocket_url`, or the request URL as ws(s)://.../stream."""
        if self.websocket_url:
            return self.websocket_url
        parts = urlsplit(self.request.url)
        scheme = "wss" if parts.scheme == "https" else "ws"
        return urlunsplit((scheme, parts.netloc, parts.path.rstrip("/") + "/stream", parts.query, ""))


ModuleConfig = Annotated[
    HealthProbeConfig | SynthesisProbeConfig | SemanticProbeConfig | QualityProbeConfig | StreamingProbeConfig,
    Field(discriminator="prober"),
]


class ProbesConfig(_Strict):
    """The `exporter.probes` section."""

    health: HealthProbeConfig = HealthProbeConfig()
    synthesis: SynthesisProbeConfig = SynthesisProbeConfig()
    semantic: SemanticProbeConfig = SemanticProbeConfig()
    quality: QualityProbeConfig = QualityProbeConfig()
    # Extra modules by name, e.g. `api_health: {prober: health, url: ...}` or
    # `stream: {prober: streaming, enabled: true, request: {url: ...}}`.
    modules: dict[str, ModuleConfig] = Field(default_factory=dict)
    # Templates and reference audio recorded by `tts-sentinel baseline`, one folder per model.
    baseline_dir: Path = Path("/var/lib/tts-sentinel/baseline")
    model_id: str = "Qwen3-TTS-12Hz-1.7B-CustomVoice"

    @model_validator(mode="after")
    def _names_unique(self) -> ProbesConfig:
        clash = {"health", "synthesis", "semantic", "quality"} & set(self.modules)
        if clash:
            raise ValueError(f"module names {sorted(clash)} are built in; give the extra module another name")
        return self

    def all_modules(self) -> dict[str, Any]:
        """Module name -> its config, enabled or not (`tts-sentinel probe` may run any)."""
        named: dict[str, Any] = {
            "health": self.health, "synthesis": self.synthesis,
            "semantic": self.semantic, "quality": self.quality,
        }
        named.update(self.modules)
        return named

    def enabled_modules(self) -> dict[str, Any]:
        """Module name -> its config, for every enabled module (the scheduled ones)."""
        return {name: cfg for name, cfg in self.all_modules().items() if cfg.enabled}
