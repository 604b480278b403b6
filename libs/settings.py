"""Process-wide settings, read from the environment (prefix ``BINOME_``).

Every knob an operator may turn lives here, so there is one place to read them.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BINOME_", extra="ignore")

    # Storage and broker. Empty means "start the embedded one".
    database_url: str | None = None
    kafka_bootstrap: str | None = None
    data_dir: Path = Path(".binome")

    # Topic names are "<topic_prefix>binome.<context>.events"; tests set a prefix
    # so that each test has its own topics on a shared broker.
    topic_prefix: str = ""
    # Topics the relay or a consumer has to create (those created beforehand
    # keep their own): on a cluster, a replication factor of 3.
    kafka_topic_partitions: int = Field(default=3, ge=1)
    kafka_replication_factor: int = Field(default=1, ge=1)

    # Auth: the algorithms are fixed here, never taken from a token header.
    jwt_issuer: str = "binome-dev"
    jwt_audience: str = "binome"
    jwt_algorithms: list[str] = Field(default_factory=lambda: ["RS256"])
    jwt_public_key_file: Path | None = None
    jwt_jwks_url: str | None = None

    # HTTP
    host: str = "127.0.0.1"
    port: int = 8000
    # Abuse limits (libs/api/limits.py). 5 MB holds a bulk import of several
    # thousand participants; the rate is per client (organisation + client id).
    max_body_bytes: int = 5 * 1024 * 1024
    rate_limit: str = "1200/minute"
    rate_limit_storage: str = "memory://"
    # Load shedding (libs/api/shedding.py): requests one service runs at once;
    # beyond it a request is answered 503 + Retry-After at once instead of
    # queueing. The services of ``binome up`` share one database pool of 20
    # connections and the machine's cores: past the point where CPU or pool
    # is busy, more in flight only adds waiting. bench/api.py on 2 cores: 16
    # kept goodput at 2x load above 90 % of the peak with a p99 near 140 ms;
    # 32 gave 80 % and a p99 near 360 ms. /healthz, /readyz and /metrics are
    # never shed.
    max_concurrent_requests: int = Field(default=16, ge=1)

    # Consumer runtime
    consumer_max_attempts: int = 3
    consumer_session_timeout_ms: int = 6000
    consumer_fetch_max_wait_ms: int = 50

    # GDPR key vault (libs/gdpr). Master keys wrap each participant's data key,
    # one per region: {"emea": "<base64 of 32 bytes>", ...}. Empty: dev keys
    # are created under <data_dir>/keys. ``country_regions`` maps ISO country
    # codes to those regions; unlisted countries use ``vault_default_region``.
    vault_schema: str = "binome_vault"
    # The vault's database when it is not the service's own (a database per
    # service, as in docker-compose.yml): every service must reach the one
    # vault, or it could not open what another service sealed.
    vault_database_url: str | None = None
    vault_master_keys: dict[str, str] = Field(default_factory=dict)
    country_regions: dict[str, str] = Field(default_factory=dict)
    vault_default_region: str = "global"

    # Dev mode: the conveniences that must never run in production (the dev
    # clock, keys generated in the data dir, plain-http webhook endpoints...).
    # None: on only for the fully embedded stack (no database URL, no Kafka
    # bootstrap); true/false force it. Read it through ``in_dev_mode``.
    dev_mode: bool | None = None

    # Dev clock (libs/runtime/clock.py): mounts POST /v1/dev/clock:advance on
    # the platform, which moves every service's "now" forward (``binome demo``
    # simulates months with it). Never in production. None: ``binome up`` turns
    # it on only when it runs the fully embedded stack (no database URL, no
    # Kafka bootstrap); true/false force it.
    dev_clock: bool | None = None

    # Outbox relay
    relay_batch_size: int = 1000
    relay_poll_interval_s: float = 0.5

    @property
    def in_dev_mode(self) -> bool:
        """``dev_mode``, or when unset: the fully embedded stack."""
        if self.dev_mode is not None:
            return self.dev_mode
        return not self.database_url and not self.kafka_bootstrap


@lru_cache
def get_settings() -> Settings:
    return Settings()
