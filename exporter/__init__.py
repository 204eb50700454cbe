"""The TTS Sentinel exporter: logs, probes, GPU and trends as Prometheus metrics."""
