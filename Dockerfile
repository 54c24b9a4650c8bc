# syntax=docker/dockerfile:1
# A small image for the bridge. The full production image (non-root user,
# health checks wired to the management port) comes with the delivery issue.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY bridge ./bridge
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim
RUN useradd --system --uid 10001 bridge
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
COPY schemas /app/schemas
WORKDIR /app
USER bridge
ENTRYPOINT ["vibes-bridge"]
CMD ["validate"]
