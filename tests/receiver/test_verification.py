"""The probe verdict is read from the exporter's exposition with prometheus_client's parser."""

from __future__ import annotations

from tts_sentinel.receiver.verification import probe_succeeded

BODY = """# HELP tts_probe_success 1 when the probe succeeded.
# TYPE tts_probe_success gauge
tts_probe_success{probe="synthesis",cell="zh/Vivian"} 1.0
tts_probe_success{probe="synthesis",cell="en/Ryan"} %s
# HELP tts_probe_duration_seconds Seconds the probe took.
# TYPE tts_probe_duration_seconds gauge
tts_probe_duration_seconds{probe="synthesis"} 0.31
"""


def test_every_success_sample_must_be_one():
    assert probe_succeeded(BODY % "1.0") is True
    assert probe_succeeded(BODY % "0.0") is False


def test_an_answer_without_the_series_or_not_an_exposition_has_no_verdict():
    assert probe_succeeded("# TYPE up gauge\nup 1\n") is None
    assert probe_succeeded("<html>502 Bad Gateway</html>") is None
    assert probe_succeeded("") is None
