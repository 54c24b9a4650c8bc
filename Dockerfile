# syntax=docker/dockerfile:1
# The production image of vibes-bridge: `vibes-bridge run`, as a non-root numeric
# user, on a read-only root filesystem. docs/deployment.md tells how to build it,
# with or without a Docker daemon (CI builds it with buildah, see scripts/image-smoke).
#
# BASE_IMAGE is any Debian-like image with python3 (3.11+) and its venv module;
# both stages must use the same one, because the virtual environment copied into
# the runtime stage links to the base's interpreter.
ARG BASE_IMAGE=python:3.11-slim

# --------------------------------------------------------------------------- wheels
# Builds the project's wheel and collects the wheels of every dependency, so the
# next stage installs offline and never needs a compiler (all dependencies ship
# manylinux wheels; confluent-kafka carries its own librdkafka).
FROM ${BASE_IMAGE} AS wheels
WORKDIR /src
COPY pyproject.toml README.md ./
COPY bridge ./bridge
RUN python3 -m venv /opt/build \
    && /opt/build/bin/pip wheel --no-cache-dir --wheel-dir /wheels .

# --------------------------------------------------------------------------- venv
# Installs only the wheels into a fresh virtual environment; nothing of the build
# (sources, pip cache, build tools) reaches the runtime stage.
FROM ${BASE_IMAGE} AS venv
COPY --from=wheels /wheels /wheels
RUN python3 -m venv /opt/vibes-bridge \
    && /opt/vibes-bridge/bin/pip install --no-cache-dir --no-index --find-links /wheels vibes-bridge \
    && /opt/vibes-bridge/bin/python -m compileall -q /opt/vibes-bridge/lib

# --------------------------------------------------------------------------- runtime
FROM ${BASE_IMAGE}
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG CREATED=unknown
LABEL org.opencontainers.image.title="vibes-bridge" \
      org.opencontainers.image.description="Kafka consumer that maps order and shipment events into Vibes Event API calls" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.documentation="docs/deployment.md"

# A numeric user (10001, outside the range of the base's system users) so that
# Kubernetes' runAsNonRoot can verify it without reading /etc/passwd.
RUN groupadd --system --gid 10001 bridge \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin bridge

COPY --from=venv /opt/vibes-bridge /opt/vibes-bridge
COPY examples /usr/share/vibes-bridge/examples
COPY schemas /usr/share/vibes-bridge/schemas

# Read-only root filesystem: no byte code is written at run time (it was compiled
# above), output is not buffered so log lines reach the collector at once, and
# HOME points at /tmp, the one writable place (an emptyDir in the Helm chart).
ENV PATH=/opt/vibes-bridge/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp \
    BRIDGE_CONFIG=/etc/vibes-bridge/bridge.yaml

USER 10001:10001
WORKDIR /tmp
# The management port: /metrics, /healthz, /readyz (management.port in the file).
EXPOSE 9464
ENTRYPOINT ["vibes-bridge"]
CMD ["run"]
