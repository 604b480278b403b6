# One image for every Binome service; the command picks what runs.
#   docker-compose.yml: `binome up --service NAME`, one service per container,
#     on the compose file's PostgreSQL and Kafka;
#   the image has no embedded PostgreSQL nor broker (binome's `embedded`
#     extra is left out): give it BINOME_DATABASE_URL and BINOME_KAFKA_BOOTSTRAP.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app

# 1. Dependencies, in their own layer: it is rebuilt only when requirements.lock
#    changes (`make lock`), never for a code change. Every package is pinned
#    with its hashes, so two builds install the same files.
COPY requirements.lock ./
RUN pip install --require-hashes --no-deps -r requirements.lock \
    && useradd --system --uid 10001 --home-dir /data binome \
    && mkdir -p /data/keys \
    && chown -R binome /data

# 2. The code: this layer and the next are all a code change rebuilds. The
#    project itself installs without resolving anything (its dependencies
#    and its build backend are installed above).
COPY pyproject.toml README.md ./
COPY libs ./libs
COPY services ./services
RUN pip install --no-deps --no-build-isolation .

# Not root (uid 10001: the binome user made above): a service needs no
# privilege, so it gets none.
USER 10001
ENV BINOME_HOST=0.0.0.0 BINOME_PORT=8000 BINOME_DATA_DIR=/data
EXPOSE 8000
CMD ["binome", "up", "--log-format", "json"]
