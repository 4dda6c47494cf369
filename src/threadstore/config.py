"""The one settings object: everything configurable comes from `THREADSTORE_*` variables or `.env`."""

from __future__ import annotations

import contextlib
import os
import secrets
import tempfile
from functools import cached_property
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEFAULT_DATA_DIR = Path("./data")
MIN_SECRET_BYTES = 32  # HS256 keys shorter than the hash output weaken it (RFC 7518 §3.2).


class ConfigError(RuntimeError):
    """The configuration cannot be used; the message is meant for the operator."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="THREADSTORE_", env_file=".env", extra="ignore")

    data_dir: Path = DEFAULT_DATA_DIR
    database_url: str | None = None
    # "transaction": database_url is a pooler in transaction mode (PgBouncer pool_mode=transaction), so no
    # session state may be relied on through it (docs/architecture.md, "Through a transaction pooler").
    database_pool_mode: Literal["session", "transaction"] = "session"
    # A connection straight to PostgreSQL for what needs a session of its own: LISTEN and the migration lock.
    direct_database_url: str | None = None
    # A streaming replica of database_url for reads that may lag (db/replica.py); PostgreSQL only. Through a
    # transaction pooler too when database_pool_mode says so (the same connection settings apply to both).
    read_database_url: str | None = None
    read_replica_retry_seconds: float = Field(5.0, gt=0)  # how long a failed replica is left alone
    jwt_secret: SecretStr | None = None
    # The contract enforces `exp` only when a token has one; a token without it is good forever once leaked.
    require_exp: bool = False

    # In a browser (API.md "In a browser"): the origins whose pages may call the API (comma-separated; none by
    # default), and the event stream's cookie, which `POST /api/events/session` sets.
    cors_origins: Annotated[list[str], NoDecode] = []
    events_cookie_samesite: Literal["strict", "lax", "none"] = "strict"
    events_cookie_secure: bool = False  # Secure also when the request came over https, or SameSite=None

    # Pool: bounded so a burst queues instead of exhausting the database; the timeout turns a wait into 503.
    # Connections are kept, not churned: overflow connections are closed on return, and opening one costs
    # far more than a query, so the default keeps every connection it may use.
    pool_size: int = Field(20, ge=1)
    pool_max_overflow: int = Field(0, ge=0)
    pool_timeout: float = Field(5.0, gt=0)
    connect_timeout: float = Field(5.0, gt=0)

    # Server-side bounds on every PostgreSQL connection, in milliseconds: nothing may hang forever.
    statement_timeout_ms: int = Field(15_000, ge=0)
    lock_timeout_ms: int = Field(3_000, ge=0)
    idle_in_transaction_timeout_ms: int = Field(10_000, ge=0)
    application_name: str = "threadstore"
    sqlite_busy_timeout_ms: int = Field(10_000, ge=0)
    isolation_level: Literal["READ COMMITTED", "REPEATABLE READ", "SERIALIZABLE"] = "READ COMMITTED"
    # Many clients appending to one thread at SERIALIZABLE: every waiter on the row lock loses to each commit,
    # so the last of them needs many rounds (tests/races, docs/safety.md has the figures). The capped backoff
    # bounds the worst case to a few seconds.
    max_transaction_attempts: int = Field(10, ge=1, le=20)
    # Migrations that rewrite existing rows (0006: every message gets its place in the thread's tree) do it in
    # batches of about this many messages, each its own transaction, this long apart; a batch holds its threads'
    # rows (SQLite: the write lock) while it runs. None: 5,000 and no pause on PostgreSQL; 1,000 and a pause as
    # long as the batch on SQLite, whose writers otherwise queue behind batch after batch (branches-design §4.3).
    migration_batch_messages: int | None = Field(None, ge=1)
    migration_batch_pause_ms: int | None = Field(None, ge=0)
    # Off by default: a ping is one more round trip per request, and a connection found dead on first use
    # is invalidated and its unit of work re-run on a fresh one (it never reached COMMIT, so that is safe).
    pool_pre_ping: bool = False

    # Limits of API.md (defaults are the contract's).
    max_body_bytes: int = Field(1024 * 1024, ge=1024)
    max_title_chars: int = Field(256, ge=1)
    max_metadata_keys: int = Field(64, ge=1)
    max_metadata_key_chars: int = Field(64, ge=1)
    max_metadata_bytes: int = Field(16 * 1024, ge=2)
    max_content_chars: int = Field(262_144, ge=1)
    max_initial_messages: int = Field(100, ge=0)
    idempotency_ttl_seconds: int = Field(24 * 3600, ge=60)
    maintenance_interval_seconds: float = Field(600.0, gt=0)  # how often expired keys are pruned
    # An in_progress reply with no delta or PATCH for this long is ended as incomplete / timeout (its generator
    # is gone), within STALE_SWEEP_SECONDS after.
    stale_message_seconds: float = Field(300.0, gt=0)
    require_if_match: bool = False  # when true, PATCH without If-Match is 428

    # Events (GET /api/events). The contract keeps events at least 24 hours.
    event_retention_seconds: int = Field(7 * 24 * 3600, ge=24 * 3600)
    event_keep_alive_seconds: float = Field(15.0, gt=0, le=15)  # the contract: a comment at least every 15 s
    # How often an instance polls for events published elsewhere (NOTIFY is the fast path) and sweeps up
    # events an instance committed but died before publishing: the bound on cross-instance delay.
    event_poll_interval_seconds: float = Field(0.5, gt=0, le=1)
    event_stream_queue_size: int = Field(1000, ge=1)  # events a stream may fall behind before it is closed
    event_stream_queue_bytes: int = Field(8 * 1024 * 1024, ge=64 * 1024)  # … or bytes of events
    # A catch-up (or fan-out) page stops once it holds this many bytes of events: what a slow client costs.
    event_page_bytes: int = Field(1024 * 1024, ge=16 * 1024)
    # Open streams per user and process: one more ends the user's oldest, which is told to reconnect only
    # after `event_evicted_retry_ms` (SSE `retry:`), so tabs beyond the cap do not keep evicting each other.
    max_streams_per_user: int = Field(10, ge=1)
    event_evicted_retry_ms: int = Field(30_000, ge=0)

    # The HTTP edge (`threadstore serve`; src/threadstore/http/edge.py): what a client may hold before the app
    # runs. Sizes count the request line and header lines as sent; connections are per server process.
    max_header_bytes: int = Field(32 * 1024, ge=1024)
    max_headers: int = Field(100, ge=1)
    header_timeout_seconds: float = Field(10.0, gt=0)
    keep_alive_timeout_seconds: int = Field(5, ge=1)
    max_connections: int = Field(1000, ge=1)

    llm_base_url: str | None = None
    llm_model: str | None = None
    llm_api_key: SecretStr | None = None
    llm_timeout: float = Field(10.0, gt=0)

    log_level: str = "INFO"

    @cached_property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'threadstore.db').resolve()}"

    @property
    def resolved_direct_database_url(self) -> str:
        """Where LISTEN and the migration lock connect: the direct URL, else the main one, which under a
        transaction pooler would carry them on server sessions other clients share."""
        if self.direct_database_url:
            return self.direct_database_url
        if self.database_pool_mode == "transaction":
            raise ConfigError(
                "THREADSTORE_DATABASE_POOL_MODE=transaction needs THREADSTORE_DIRECT_DATABASE_URL: LISTEN and the "
                "migration lock need a session of their own, straight to PostgreSQL"
            )
        return self.resolved_database_url

    @property
    def is_sqlite(self) -> bool:
        return self.resolved_database_url.startswith("sqlite")

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _origins(cls, value: object) -> object:
        """`https://a.example,https://b.example` (a list is taken as it is); each origin without a trailing /."""
        if isinstance(value, str):
            value = [part for part in (item.strip() for item in value.split(",")) if part]
        if isinstance(value, list):
            return [str(item).rstrip("/") for item in value]
        return value

    def require_jwt_secret(self) -> tuple[str, str | None]:
        """The signing secret and, when one was generated or loaded from the data folder, a note saying so.

        On the embedded default a missing secret is generated once and kept (0600) in the data folder so a
        first-time user can start at once; on a shared database a guessable default would be a hole.
        """
        if self.jwt_secret is not None:
            value = self.jwt_secret.get_secret_value()
            if len(value.encode()) < MIN_SECRET_BYTES:
                raise ConfigError(f"THREADSTORE_JWT_SECRET must be at least {MIN_SECRET_BYTES} bytes long")
            return value, None
        if not self.is_sqlite:
            raise ConfigError("THREADSTORE_JWT_SECRET must be set when the database is not the SQLite default")
        path = self.data_dir / "jwt-secret"
        if not path.exists():
            self.data_dir.mkdir(parents=True, exist_ok=True)
            _create_secret_file(path)
            note = f"generated a JWT secret and kept it in {path} (mode 0600)"
        else:
            note = f"using the JWT secret kept in {path}"
        value = path.read_text().strip()
        if len(value.encode()) < MIN_SECRET_BYTES:
            raise ConfigError(f"the JWT secret in {path} is shorter than {MIN_SECRET_BYTES} bytes; delete it to renew")
        return value, note


def _create_secret_file(path: Path) -> None:
    """Writes a new secret to a private temporary file, then links it into place: the file appears whole or
    not at all, and if another process won the race its secret is kept (link refuses to overwrite)."""
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".jwt-secret-")  # created with mode 0600
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(48) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        with contextlib.suppress(FileExistsError):
            os.link(temporary, path)
    finally:
        os.unlink(temporary)


def load_settings(**overrides: object) -> Settings:
    return Settings(**overrides)  # type: ignore[arg-type]
