# One image for both processes: `tts-sentinel exporter` and `tts-sentinel receiver`.
# The base image is pinned by digest: a moved tag cannot change what is built. This digest of
# python:3.11-slim was not resolved on the machine that wrote it (no registry there); it is the
# one two unrelated public projects pin for that tag (Docker Hub and its ECR Public mirror).
# Check or refresh it with `docker buildx imagetools inspect python:3.11-slim` (the "Digest:" line).
FROM python:3.11-slim@sha256:9c900dea9e8fb7e16277c179b555cc72d29a352dbc33cff48ad5a0412fd5bfc7
WORKDIR /opt/tts-sentinel
# Every dependency, and setuptools to build this package, from the lock file: each pinned and
# checked against its sha256 (pip refuses any file whose hash is not listed). See SECURITY.md.
COPY requirements-lock.txt ./
RUN pip install --no-cache-dir --require-hashes -r requirements-lock.txt
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
# --no-deps --no-build-isolation: nothing is fetched here that the lock did not check.
# uid 10001: the owner deploy/compose/make-secrets.sh gives the receiver's secrets.
RUN pip install --no-cache-dir --no-deps --no-build-isolation . \
    && useradd --system --uid 10001 --home /var/lib/tts-sentinel tts-sentinel
USER tts-sentinel
ENTRYPOINT ["tts-sentinel"]
