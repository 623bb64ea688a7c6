# syntax=docker/dockerfile:1
# hromada-bot: multi-stage build. The builder makes a virtualenv with the project installed and
# the translations compiled; the runtime image copies only that and runs as a non-root user.

FROM python:3.11-slim AS builder
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY infra ./infra
COPY handlers ./handlers
COPY models ./models
COPY services ./services
COPY migrations ./migrations
COPY locales ./locales
RUN pip install . \
 && python -c "from infra.i18n import compile_locales, SOURCE_DIR; compile_locales(); assert (SOURCE_DIR / 'uk/LC_MESSAGES/messages.mo').exists()"

FROM python:3.11-slim AS runtime
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    WEBHOOK_HOST=0.0.0.0 \
    WEBHOOK_PORT=8080
RUN groupadd --system hromada && useradd --system --gid hromada --home-dir /app --shell /usr/sbin/nologin hromada
COPY --from=builder /opt/venv /opt/venv
WORKDIR /app
COPY data ./data
RUN chown -R hromada:hromada /app
USER hromada
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD python -c "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=4).status == 200 else 1)"
CMD ["hromada-bot", "webhook"]
