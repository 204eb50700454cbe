# One image for both processes: `tts-sentinel exporter` and `tts-sentinel receiver`.
FROM python:3.11-slim
WORKDIR /opt/tts-sentinel
COPY pyproject.toml README.md ./
COPY tts_sentinel ./tts_sentinel
COPY exporter ./exporter
COPY receiver ./receiver
COPY simulator ./simulator
COPY loghistory ./loghistory
COPY harness ./harness
# data shipped in the package (rules, dashboards, deployment files; see tts_sentinel/shipped.py)
COPY rules ./rules
COPY dashboards ./dashboards
COPY deploy ./deploy
RUN pip install --no-cache-dir . && useradd --system --home /var/lib/tts-sentinel tts-sentinel
USER tts-sentinel
ENTRYPOINT ["tts-sentinel"]
