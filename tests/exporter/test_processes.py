"""The process collector and the systemd source: the manager's view as tts_process_* series, never a silent all-clear."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from pydantic import ValidationError

sys.path.insert(0, str(Path(__file__).parent))
from fake_process_managers import FakeSystemctl  # noqa: E402

from tts_sentinel.config import parse_config  # noqa: E402
from tts_sentinel.exporter.config import ExporterConfig  # noqa: E402
from tts_sentinel.exporter.processes import SOURCES  # noqa: E402
from tts_sentinel.exporter.processes.collector import ProcessCollector  # noqa: E402
from tts_sentinel.exporter.processes.config import ProcessesConfig, SupervisordSourceConfig  # noqa: E402
from tts_sentinel.exporter.processes.source import SourceError  # noqa: E402
from tts_sentinel.exporter.processes.systemd import PROPERTIES, SystemdSource  # noqa: E402
from tts_sentinel.exporter.server import Exporter  # noqa: E402

WEB, INFERENCE = "qwen3-tts-webui.service", "qwen3-tts-inference.service"


def scrape(collector) -> dict[tuple[str, tuple], float]:
    registry = CollectorRegistry()
    registry.register(collector)
    out = {}
    for fam in text_string_to_metric_families(generate_latest(registry).decode()):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def series(m, metric, **labels):
    return m.get((metric, tuple(sorted(labels.items()))))


def now_usec() -> int:
    return int(time.monotonic() * 1e6)


@pytest.fixture
def systemctl(tmp_path):
    fake = FakeSystemctl(tmp_path, now_usec())
    fake.add_running(WEB, now_usec() - 30_000_000)
    fake.add_running(INFERENCE, now_usec() - 600_000_000, restarts=2)
    return fake


def systemd_config(fake: FakeSystemctl) -> ProcessesConfig:
    return ProcessesConfig(kind="systemd", systemd={"systemctl": str(fake.path)})


# --- config ------------------------------------------------------------------------------------

def test_default_watches_supervisord_on_the_port_the_receiver_acts_through():
    config = ExporterConfig().processes
    assert config.enabled and config.kind == "supervisord"
    assert config.supervisord.url == "http://127.0.0.1:9001/RPC2"
    assert (config.supervisord.web_program, config.supervisord.inference_program) == ("tts-webui", "tts-inference")


def test_every_configurable_kind_has_a_source():
    kinds = set(ProcessesConfig.model_fields["kind"].annotation.__args__)
    assert kinds == set(SOURCES) == {"supervisord", "systemd", "docker", "kubernetes"}


def test_unknown_kind_and_unknown_key_are_refused_with_the_line():
    with pytest.raises(Exception) as err:
        parse_config("exporter:\n  processes:\n    kind: runit\n", "c.yml")
    assert "c.yml:3: exporter.processes.kind" in str(err.value)
    with pytest.raises(ValidationError):
        ProcessesConfig(supervisord={"url": "http://x/RPC2", "program": "web"})


def test_the_example_config_watches_the_same_supervisord_as_the_receiver_target():
    text = (Path(__file__).parents[2] / "tts-sentinel.yml").read_text()
    config = parse_config(text, "tts-sentinel.yml")
    target = config.receiver.targets[0].supervisord
    watched = config.exporter.processes.supervisord
    assert config.exporter.processes.kind == config.receiver.targets[0].actuator == "supervisord"
    assert (watched.url, watched.web_program, watched.inference_program) == (
        target.url, target.web_program, target.inference_program)


# --- collector ---------------------------------------------------------------------------------

def test_disabled_says_so_and_exports_no_process_series():
    m = scrape(ProcessCollector(ProcessesConfig(enabled=False)))
    assert series(m, "tts_process_source_up", kind="supervisord", reason="disabled") == 0
    assert not [k for k in m if k[0] != "tts_process_source_up"]


def test_an_absent_supervisord_is_source_down_with_a_reason(port):
    config = ProcessesConfig(supervisord=SupervisordSourceConfig(url=f"http://127.0.0.1:{port}/RPC2"))
    m = scrape(ProcessCollector(config))
    assert series(m, "tts_process_source_up", kind="supervisord", reason="unreachable") == 0
    assert not any(k[0] == "tts_process_up" for k in m)


def test_families_carry_component_and_name(systemctl):
    m = scrape(ProcessCollector(systemd_config(systemctl)))
    assert series(m, "tts_process_source_up", kind="systemd", reason="") == 1
    assert series(m, "tts_process_up", component="web", name=WEB) == 1
    assert series(m, "tts_process_state", component="web", name=WEB, state="active/running") == 1
    assert series(m, "tts_process_restarts_total", component="web", name=WEB) == 0
    assert series(m, "tts_process_restarts_total", component="inference", name=INFERENCE) == 2
    assert series(m, "tts_process_backoff", component="inference", name=INFERENCE) == 0
    assert series(m, "tts_process_start_time_seconds", component="web", name=WEB) == pytest.approx(
        time.time() - 30, abs=2)
    # no exit yet: no exit code rather than a made-up 0
    assert series(m, "tts_process_last_exit_code", component="web", name=WEB) is None


def test_values_are_read_at_scrape_time(systemctl):
    collector = ProcessCollector(systemd_config(systemctl))
    assert series(scrape(collector), "tts_process_up", component="web", name=WEB) == 1
    systemctl.update(WEB, ActiveState="failed", SubState="failed", Result="exit-code", ExecMainCode="1",
                     ExecMainStatus="3")
    m = scrape(collector)
    assert series(m, "tts_process_up", component="web", name=WEB) == 0
    assert series(m, "tts_process_last_exit_code", component="web", name=WEB) == 3


def test_the_last_exit_code_outlives_the_managers_reset_on_restart(systemctl):
    """systemd (and Docker) clear the main process status when the process runs again; the series keeps it."""
    collector = ProcessCollector(systemd_config(systemctl))
    systemctl.update(WEB, ActiveState="activating", SubState="auto-restart", ExecMainCode="1", ExecMainStatus="1")
    scrape(collector)
    systemctl.update(WEB, ActiveState="active", SubState="running", NRestarts="1", ExecMainCode="0",
                     ExecMainStatus="0", ExecMainStartTimestampMonotonic=str(now_usec()))
    m = scrape(collector)
    assert series(m, "tts_process_restarts_total", component="web", name=WEB) == 1
    assert series(m, "tts_process_last_exit_code", component="web", name=WEB) == 1


def test_a_source_bug_is_a_down_source_not_a_failed_scrape(systemctl, monkeypatch):
    collector = ProcessCollector(systemd_config(systemctl))
    monkeypatch.setattr(SystemdSource, "read", lambda self: 1 / 0)
    m = scrape(collector)
    assert series(m, "tts_process_source_up", kind="systemd", reason="error") == 0


def test_the_exporter_serves_the_process_series(systemctl, tmp_path):
    exporter = Exporter(ExporterConfig(state_dir=tmp_path / "state", gpu={"enabled": False},
                                       probes={"health": {"enabled": False}, "synthesis": {"enabled": False}},
                                       processes=systemd_config(systemctl)))
    text = generate_latest(exporter.registry).decode()
    assert f'tts_process_up{{component="inference",name="{INFERENCE}"}} 1.0' in text


# --- systemd -----------------------------------------------------------------------------------

def test_systemctl_gets_an_argv_with_the_properties_and_the_unit(systemctl):
    SystemdSource(systemd_config(systemctl).systemd).read()
    assert systemctl.calls() == [["show", "-p", ",".join(PROPERTIES), WEB], ["show", "-p", ",".join(PROPERTIES), INFERENCE]]
    assert {"NRestarts", "ActiveState", "SubState", "ExecMainStatus", "ExecMainStartTimestampMonotonic"} <= set(PROPERTIES)


def test_a_crash_restarted_by_systemd_counts_and_keeps_its_signal(systemctl):
    source = SystemdSource(systemd_config(systemctl).systemd)
    systemctl.update(INFERENCE, NRestarts="3", ExecMainCode="3", ExecMainStatus="11")  # dumped core on SIGSEGV
    inference = {p.component: p for p in source.read().processes}["inference"]
    assert inference.restarts == 3
    assert inference.last_exit_code == 139


@pytest.mark.parametrize(("active", "sub", "result", "up", "backoff"), [
    ("active", "running", "success", True, False),
    ("activating", "auto-restart", "exit-code", False, True),
    ("failed", "failed", "start-limit-hit", False, True),
    ("failed", "failed", "exit-code", False, False),
    ("inactive", "dead", "success", False, False),
])
def test_states_map_to_up_and_backoff(systemctl, active, sub, result, up, backoff):
    systemctl.update(WEB, ActiveState=active, SubState=sub, Result=result)
    web = {p.component: p for p in SystemdSource(systemd_config(systemctl).systemd).read().processes}["web"]
    assert (web.up, web.backoff, web.state) == (up, backoff, f"{active}/{sub}")


def test_an_unknown_unit_names_the_key_to_set(systemctl):
    del systemctl.units[INFERENCE]
    systemctl.save()
    with pytest.raises(SourceError) as err:
        SystemdSource(systemd_config(systemctl).systemd).read()
    assert err.value.reason == "not_found"
    assert "exporter.processes.systemd.inference_unit" in str(err.value)


def test_a_host_without_systemd_as_init_is_unreachable_with_systemds_words(systemctl):
    systemctl.no_bus = True
    systemctl.save()
    with pytest.raises(SourceError) as err:
        SystemdSource(systemd_config(systemctl).systemd).read()
    assert err.value.reason == "unreachable"
    assert "Failed to connect to bus" in str(err.value)


def test_a_missing_systemctl_says_which_key_to_set(tmp_path):
    config = ProcessesConfig(kind="systemd", systemd={"systemctl": str(tmp_path / "nope")}).systemd
    with pytest.raises(SourceError) as err:
        SystemdSource(config).read()
    assert "exporter.processes.systemd.systemctl" in str(err.value)
