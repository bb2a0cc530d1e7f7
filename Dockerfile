# The monitor service: `monitor run` with the health endpoint on 0.0.0.0:8321 inside the
# container. Build context: see .dockerignore (only pyproject.toml, README.md, monitor/, rules/).
# Run it with docker-compose.yml, which mounts rules/ read-only and keeps state/ in a volume.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    TZ=UTC

# tzdata: the slim image has no zoneinfo database, so without it TZ would be ignored and log
# times would stay in UTC (routes use the tzdata Python package for their own time zones).
RUN apt-get update \
    && apt-get install -y --no-install-recommends tzdata \
    && rm -rf /var/lib/apt/lists/*

# A dedicated user with a fixed uid, so files it writes in the state volume keep one owner.
RUN useradd --system --uid 10001 --user-group --home-dir /srv/monitor \
        --shell /usr/sbin/nologin monitor

# The package only, without test extras; README.md is needed because pyproject.toml names it.
# Built outside WORKDIR so that no source tree there shadows the installed package.
COPY pyproject.toml README.md /tmp/src/
COPY monitor /tmp/src/monitor
RUN pip install /tmp/src && rm -rf /tmp/src

WORKDIR /srv/monitor

# The shipped rules are a fallback for `docker run` without a mount; compose mounts the
# host's rules/ over them, read-only. state/ is created here, owned by the service user,
# because a new named volume copies the ownership of the folder it is mounted on.
COPY rules ./rules
RUN mkdir -p state && chown monitor:monitor state

USER monitor

EXPOSE 8321

# No curl in slim images: python's urllib. urlopen raises on a 503, so the check exits 1
# (unhealthy) with the reason /healthz gave.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8321/healthz', timeout=4)"]

# Relative defaults resolve under WORKDIR: rules/ and state/monitor.db.
CMD ["monitor", "run", "--health-host", "0.0.0.0"]
