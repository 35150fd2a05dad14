# syntax=docker/dockerfile:1
# Gatehouse: `manage.py serve` (daphne) serving the console, REST API and MCP gateway. The same
# image runs the Celery worker and beat (see docker-compose.yml). Configuration is environment only.

# --- build: a virtualenv installed from the hash-pinned lock ---------------------------------
FROM python:3.11-slim-bookworm AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
RUN python -m venv /opt/venv
COPY requirements.lock /tmp/requirements.lock
RUN /opt/venv/bin/pip install --require-hashes --no-deps -r /tmp/requirements.lock

# --- runtime: the virtualenv, the code, an unprivileged user ---------------------------------
FROM python:3.11-slim-bookworm AS runtime
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    DJANGO_SETTINGS_MODULE=gatehouse.settings \
    GATEHOUSE_DATA_DIR=/data \
    PORT=8000
RUN groupadd --system --gid 10001 gatehouse \
    && useradd --system --uid 10001 --gid gatehouse --home-dir /app --shell /usr/sbin/nologin gatehouse \
    && mkdir -p /data \
    && chown gatehouse:gatehouse /data
COPY --from=build /opt/venv /opt/venv
# `gatehouse COMMAND …` as in the README (`docker compose exec web gatehouse …`): manage.py of /app.
RUN printf '#!/bin/sh\nexec python /app/manage.py "$@"\n' > /opt/venv/bin/gatehouse \
    && chmod 755 /opt/venv/bin/gatehouse
WORKDIR /app
# Code stays root-owned and read-only to the service user; it writes only to /data.
COPY . /app
# Static files are part of the build; the data dir is a volume. Importing settings writes nothing
# and collectstatic needs no secret key, so the build leaves no data behind.
RUN python manage.py collectstatic --noinput --verbosity 0
USER 10001:10001
VOLUME ["/data"]
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen(f\"http://127.0.0.1:{os.environ.get('PORT', '8000')}/health\", timeout=4)"]
# `manage.py serve`: prepares the data dir, then daphne on $PORT without daphne's own access log
# (it prints raw query strings, ?key= tokens included); Gatehouse logs masked JSON instead.
# --proxy-headers: the client address comes from X-Forwarded-For set by the load balancer.
CMD ["python", "manage.py", "serve", "--bind", "0.0.0.0", "--proxy-headers"]
