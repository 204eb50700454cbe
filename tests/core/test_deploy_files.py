"""docker-compose.yml and the Grafana provisioning point at files that exist and stay on loopback."""

from __future__ import annotations

from pathlib import Path

import yaml

ROOT = Path(__file__).parents[2]


def test_compose_mounts_exist_and_everything_stays_on_host_loopback():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    for name, service in compose["services"].items():
        assert service["network_mode"] == "host", name
        assert "ports" not in service, f"{name} publishes ports; use loopback listen addresses"
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./") and not source.startswith("./secrets"):
                assert (ROOT / source).exists(), f"{name} mounts missing {source}"
    listen = " ".join(" ".join(s.get("command", [])) for s in compose["services"].values())
    assert "0.0.0.0" not in listen


def test_grafana_provisioning_is_valid_and_dashboard_has_panels():
    import json

    ds = yaml.safe_load((ROOT / "dashboards/provisioning/datasources/prometheus.yml").read_text())
    assert ds["datasources"][0]["type"] == "prometheus"
    dash = json.loads((ROOT / "dashboards/tts-sentinel.json").read_text())
    assert dash["uid"] == "tts-sentinel" and len(dash["panels"]) >= 8
    assert all(p["targets"][0]["datasource"]["uid"] == ds["datasources"][0]["uid"] for p in dash["panels"])
