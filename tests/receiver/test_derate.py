"""Derate through NVML (FakeNvml follows pynvml): lower within the card's limits, restore on resolved."""

from __future__ import annotations

from tests.receiver.conftest import alert, payload, receiver_config, wait_for
from tests.receiver.fakes import FakeNvml
from tts_sentinel.receiver.gpu import NvmlGpu


def test_derate_lowers_power_limit_and_restores_on_resolved(make_receiver):
    nvml = FakeNvml(min_mw=100_000, max_mw=350_000, default_mw=300_000)
    receiver = make_receiver(receiver_config(None, None), gpu=NvmlGpu(nvml), is_root=lambda: True)
    hot = alert("TtsGpuTemperatureRising", tier="derate")

    job = receiver.wait_job(receiver.post(payload(hot)).json()["new_jobs"][0])
    assert job["status"] == "succeeded", job
    assert nvml.limits[0]["current"] == 240_000, "0.8 x the default limit"
    assert job["steps"][0]["previous_limit_mw"] == 300_000

    resolved = {**hot, "status": "resolved", "endsAt": "2026-11-23T11:00:00Z"}
    answer = receiver.post(payload(resolved, status="resolved")).json()
    restore = receiver.wait_job(answer["new_jobs"][0])
    assert restore["kind"] == "restore" and restore["status"] == "succeeded", restore
    assert nvml.limits[0]["current"] == 300_000
    assert nvml.set_calls == [(0, 240_000), (0, 300_000)]


def test_derate_stays_within_the_card_limits(make_receiver):
    nvml = FakeNvml(min_mw=280_000, max_mw=350_000, default_mw=300_000)
    cfg = receiver_config(None, None, target={"gpu": {"derate_ratio": 0.5}})
    receiver = make_receiver(cfg, gpu=NvmlGpu(nvml), is_root=lambda: True)
    job = receiver.wait_job(receiver.post(payload(alert(tier="derate"))).json()["new_jobs"][0])
    assert job["status"] == "succeeded"
    assert nvml.limits[0]["current"] == 280_000, "clamped to the card's minimum, not 150 W"


def test_derate_without_root_tells_on_call(make_receiver, alertmanager):
    nvml = FakeNvml(root=False)
    cfg = receiver_config(None, None, alertmanager_url=alertmanager.url)
    receiver = make_receiver(cfg, gpu=NvmlGpu(nvml), is_root=lambda: False)
    job = receiver.wait_job(receiver.post(payload(alert(tier="derate"))).json()["new_jobs"][0])
    assert job["status"] == "failed" and "needs root" in job["note"]
    assert nvml.limits[0]["current"] == 300_000
    paged = wait_for(lambda: alertmanager.alerts("TtsRemediationRefused"), what="the page")
    assert paged[0]["labels"]["reason"] == "derate_unavailable"


def test_derate_without_a_gpu_is_journaled(make_receiver):
    class NoDriver(FakeNvml):
        def nvmlInit(self):
            raise self.NVMLError(9)  # NVML_ERROR_DRIVER_NOT_LOADED

    receiver = make_receiver(receiver_config(None, None), gpu=NvmlGpu(NoDriver()), is_root=lambda: True)
    job = receiver.wait_job(receiver.post(payload(alert(tier="derate"))).json()["new_jobs"][0])
    assert job["status"] == "failed"
    assert "NVML cannot start" in job["steps"][0]["output"]
    assert "on-call NOT told: no alertmanager_url" in job["note"]
