"""One synthesis request, in either protocol, turned into decoded audio or a failure reason.

Shared by the L2, L3 and quality probers and by `tts-sentinel baseline`.
"""

from __future__ import annotations

import httpx

from tts_sentinel.exporter.audio.wav import Audio, WavError, decode_wav
from tts_sentinel.exporter.probes.config import SpeechRequestConfig


class SpeechError(Exception):
    """A request that did not give audio: `reason` is a probe failure reason, the message says why."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


def request_speech(config: SpeechRequestConfig, text: str, lang: str, speaker: str,
                   instructions: str = "") -> Audio:
    """POST the text and decode the WAV; raise SpeechError(timeout|connection|http_status|bad_wav)."""
    try:
        response = httpx.request(
            config.method, config.url, json=config.body(text, lang, speaker, instructions),
            headers=config.request_headers(), timeout=config.timeout_seconds,
        )
    except httpx.TimeoutException:
        raise SpeechError("timeout", f"{config.url} gave no audio within {config.timeout_seconds}s") from None
    except (httpx.HTTPError, OSError) as exc:
        raise SpeechError("connection", f"{config.url}: {exc.__class__.__name__}: {exc}") from None
    if response.status_code != 200:
        raise SpeechError("http_status", f"status {response.status_code}: {_error_text(response)}")
    try:
        return decode_wav(response.content)
    except WavError as exc:
        raise SpeechError("bad_wav", str(exc)) from None


def _error_text(response: httpx.Response) -> str:
    """The message of a JSON error ({"error": {"message": ...}} or {"error": "..."}), else the body head."""
    try:
        error = response.json().get("error")
    except (ValueError, AttributeError):
        return response.text[:120]
    if isinstance(error, dict):
        return str(error.get("message", error))[:200]
    return str(error)[:200]
