"""L2 synthesis prober: a real request per (language, speaker) target, the WAV checked with numpy."""

from __future__ import annotations

import time

from tts_sentinel.exporter.audio.checks import check_speech
from tts_sentinel.exporter.evidence import keep_evidence
from tts_sentinel.exporter.evidence_exhibit import Exhibit, request_check, speech_checks
from tts_sentinel.exporter.probes.config import ProbesConfig, SynthesisProbeConfig, SynthesisTarget
from tts_sentinel.exporter.probes.prober import Measurement, Prober, ProbeResult
from tts_sentinel.exporter.probes.speech import SpeechError, request_speech

REASONS = ("timeout", "connection", "http_status", "bad_wav", "sample_rate", "too_short", "too_long",
           "silent", "zero_run", "clipping")


def probe_synthesis(config: SynthesisProbeConfig, probes: ProbesConfig | None = None) -> ProbeResult:
    """Synthesise the text for every target; success when every target's audio passes."""
    result = ProbeResult(success=True, detail="")
    details = []
    for target in config.targets:
        reason, detail = _probe_target(config, target, result, probes)
        details.append(f"{target.lang}/{target.speaker}: {detail}")
        if reason:
            result.success = False
            result.reasons.append(reason)
    result.detail = "; ".join(details)
    return result


def _probe_target(
    config: SynthesisProbeConfig, target: SynthesisTarget, result: ProbeResult, probes: ProbesConfig | None,
) -> tuple[str | None, str]:
    """Request and check one target, adding its measurements to `result`; (reason or None, detail)."""
    labels = {"lang": target.lang, "speaker": target.speaker}
    text = target.text or config.text
    started = time.monotonic()
    reason: str | None
    try:
        audio = request_speech(config.request, text, target.lang, target.speaker, target.instructions)
    except SpeechError as exc:
        reason, detail = exc.reason, str(exc)
        keep_evidence(probes, Exhibit("synthesis", labels, [reason], detail, request_check(reason, detail), text))
    else:
        report = check_speech(audio, config.audio, text)
        reason, detail = report.reason, report.detail
        if reason:
            keep_evidence(probes, Exhibit("synthesis", labels, [reason], detail, speech_checks(report, config.audio),
                                          text, clip=audio))
        for name, help_text, value in (
            ("tts_audio_duration_seconds", "Duration of the last probe's audio.", report.duration_seconds),
            ("tts_audio_max_duration_seconds", "Duration bound for the probe text (runaway).", report.max_seconds),
            ("tts_audio_silence_ratio", "Share of 10 ms frames below the silence level.", report.silence_ratio),
            ("tts_audio_clipping_ratio", "Share of samples at full scale.", report.clipping_ratio),
            ("tts_audio_zero_run_seconds", "Longest run of all-zero frames.", report.longest_zero_run_seconds),
        ):
            result.gauges.append(Measurement(name, help_text, labels, value))
    result.gauges.append(Measurement("tts_synthesis_success", "1 when the last L2 request of this target passed.",
                                     labels, 0.0 if reason else 1.0))
    result.gauges.append(Measurement("tts_synthesis_request_seconds", "Seconds the last L2 request took.",
                                     labels, time.monotonic() - started))
    if reason:
        result.counts.append(Measurement("tts_synthesis_failures_total", "L2 failures by target and reason.",
                                         {**labels, "reason": reason}, 1.0))
    return reason, detail


PROBER = Prober(run=probe_synthesis, reasons=REASONS)
