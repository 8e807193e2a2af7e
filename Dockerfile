# syntax=docker/dockerfile:1
FROM python:3.12-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    LISTWARDEN_HOST=0.0.0.0 \
    DATABASE_URL=sqlite:///data/listwarden.sqlite3

WORKDIR /app
COPY pyproject.toml README.md ./
COPY core ./core
COPY bot ./bot
COPY webhooks ./webhooks
COPY api ./api
COPY listwarden ./listwarden
RUN pip install --no-cache-dir . \
    && useradd --system --uid 10001 --home-dir /data --create-home listwarden

USER 10001
WORKDIR /data
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=3s CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz')"]
CMD ["listwarden", "serve"]
