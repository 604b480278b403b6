"""Process-wide settings, read from the environment (prefix ``BINOME_``).

Every knob an operator may turn lives here, so there is one place to read them.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


#: How log lines look (``binome up --log-format``): console on a terminal, else JSON.
LogFormat = Literal["auto", "json", "console"]


#: How long a spooled audit record waits for others before their batch is
#: shipped (libs/audit/spool.py; ``BINOME_AUDIT_LINGER_S``): a ship is a
#: wake-up and a round trip, so at 100 requests a second per worker 200 ms
#: cost 0.07-0.08 ms less per request than 50 (bench/README.md, "Seventh
#: pass"), and a trail read from another process is at most that late.
AUDIT_LINGER_S = 0.2


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
    # A token living longer than this (exp - iat) is refused, whoever signed
    # it: a leaked long-lived token is a standing key to HR data.
    jwt_max_lifetime_s: int = Field(default=12 * 3600, ge=60)

    # HTTP
    host: str = "127.0.0.1"
    port: int = 8000
    # HTTP worker processes of ``binome up`` (libs/runtime/workers.py); unset:
    # one per core. 1 serves in the same process as the relays and consumers.
    workers: int | None = Field(default=None, ge=1)
    # Abuse limits (libs/api/limits.py). 5 MB holds a bulk import of several
    # thousand participants; the rate is per client (organisation + client id).
    max_body_bytes: int = 5 * 1024 * 1024
    rate_limit: str = "1200/minute"
    rate_limit_storage: str = "memory://"
    # Failed authentications (no or bad token) per source address; past it,
    # that address's failures get 429 instead of 401.
    auth_failure_limit: str = "60/minute"
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
    # A batch failing transiently (database or broker fault) is retried for as
    # long as it takes, with exponential backoff capped at this many seconds.
    consumer_retry_max_backoff_s: float = Field(default=60.0, gt=0)

    # GDPR key vault (libs/gdpr). Master keys wrap each participant's data key,
    # one per region: {"emea": "<base64 of 32 bytes>", ...}. Empty: in dev mode
    # only, dev keys are created under <data_dir>/keys. ``country_regions`` maps ISO country
    # codes to those regions; unlisted countries use ``vault_default_region``.
    vault_schema: str = "binome_vault"
    # The vault's database when it is not the service's own (a database per
    # service, as in docker-compose.yml): every service must reach the one
    # vault, or it could not open what another service sealed.
    vault_database_url: str | None = None
    vault_master_keys: dict[str, str] = Field(default_factory=dict)
    # The same as a JSON file (a mounted secret), outside the data dir. Outside
    # dev mode one of the two is required: ``binome up`` refuses to start.
    vault_master_keys_file: Path | None = None
    country_regions: dict[str, str] = Field(default_factory=dict)
    vault_default_region: str = "global"
    # How often each service's compactor looks for erasures to complete on
    # disk (libs/gdpr/compaction.py): the delay before an erasure reads
    # "completed", and how often an idle service asks the vault.
    erasure_compaction_interval_s: float = Field(default=2.0, gt=0)

    # Dev mode: the conveniences that must never run in production (the dev
    # clock, keys generated in the data dir, plain-http webhook endpoints...).
    # None: on only for the fully embedded stack (no database URL, no Kafka
    # bootstrap); true/false force it. Read it through ``in_dev_mode``.
    dev_mode: bool | None = None

    # Dev clock (libs/runtime/clock.py): mounts POST /v1/dev/clock:advance on
    # the platform, which moves every service's "now" forward (``binome demo``
    # simulates months with it), for the ``dev_clock`` role. Only in dev mode:
    # false turns it off there; nothing turns it on outside dev mode.
    dev_clock: bool | None = None

    # Audit trail under `binome up` (libs/audit/spool.py): how long a spooled
    # record waits for others before their batch goes to the database.
    audit_linger_s: float = Field(default=AUDIT_LINGER_S, ge=0, le=60)

    # Reads held by the HTTP workers of `binome up --workers N` (libs/api/
    # held_reads.py): the longest a page or a document is answered again
    # without reading it; 0: nothing is held. The bound for writes no worker
    # of this host hears of: API replicas on other hosts over the same
    # database (set 0 there if a read may not trail them by this long).
    held_reads_s: float = Field(default=5.0, ge=0, le=60)

    # Outbox relay
    relay_batch_size: int = 1000
    relay_poll_interval_s: float = 0.5

    # Lag against the log (libs/messaging/watermarks.py): how often each
    # consumer's watermark and backlog gauges are refreshed.
    backlog_interval_s: float = Field(default=5.0, gt=0)
    # Scheduled jobs (libs/runtime/scheduler.py: e.g. waves closing on their
    # dates): how often each looks for work due on the platform clock.
    scheduler_interval_s: float = Field(default=10.0, gt=0, le=3600)
    # The event store of a context when it is not in the platform's database
    # (a database per service, as in docker-compose.yml): {"enrollment":
    # "postgresql://..."}. Consumers' lag and start-up catch-up read them.
    event_store_urls: dict[str, str] = Field(default_factory=dict)

    # Notifications (services/notifications): the mail server, as
    # smtp://[user:password@]host:port (add ?starttls=true to upgrade) or
    # smtps://...; unset: every message is written as an .eml file under
    # <data_dir>/mail/. ``mail_from`` is the sender and the invites' organiser.
    smtp_url: str | None = None
    mail_from: str = "binome@localhost"
    # How often the delivery and scheduler workers look for due work, and how
    # many tries a message gets (backoff between them) before it is failed.
    notifications_poll_interval_s: float = Field(default=1.0, gt=0)
    mail_max_attempts: int = Field(default=8, ge=1)

    @property
    def in_dev_mode(self) -> bool:
        """``dev_mode``, or when unset: the fully embedded stack."""
        if self.dev_mode is not None:
            return self.dev_mode
        return not self.database_url and not self.kafka_bootstrap


@lru_cache
def get_settings() -> Settings:
    return Settings()
