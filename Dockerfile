# One image for every Binome service; the command picks what runs.
#   docker-compose.yml: `binome up --service NAME`, one service per container,
#     on the compose file's PostgreSQL and Kafka;
#   `docker run binome:local` alone: every service on the embedded stack.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY libs ./libs
COPY services ./services
RUN pip install . \
    && useradd --system --uid 10001 --home-dir /data binome \
    && mkdir -p /data/keys \
    && chown -R binome /data
# Not root: a service needs no privilege, so it gets none.
USER binome
ENV BINOME_HOST=0.0.0.0 BINOME_PORT=8000 BINOME_DATA_DIR=/data
EXPOSE 8000
CMD ["binome", "up", "--log-format", "json"]
