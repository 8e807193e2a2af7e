"""Configuration from the environment, one place for every setting and its default.

Each field's description is the documentation: `listwarden config` prints them, and the
README table is generated from the same source.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="", extra="ignore", populate_by_name=True)

    # --- serving -------------------------------------------------------------------
    host: str = Field("127.0.0.1", alias="LISTWARDEN_HOST", description="Address `listwarden serve` binds.")
    port: int = Field(8000, alias="LISTWARDEN_PORT", description="Port `listwarden serve` binds.")
    public_url: str = Field(
        "http://localhost:8000",
        alias="LISTWARDEN_PUBLIC_URL",
        description="Base URL the platforms and Slack reach this instance at (webhook and OAuth URLs are built from it).",
    )
    log_level: str = Field("info", alias="LISTWARDEN_LOG_LEVEL", description="Log level: debug, info, warning, error.")

    # --- storage and secrets --------------------------------------------------------
    database_url: str = Field(
        "sqlite://listwarden.sqlite3",
        alias="DATABASE_URL",
        description="Tortoise database URL: sqlite://FILE (default, in the working directory) or postgres://user@host/db.",
    )
    secret_key: SecretStr | None = Field(
        None,
        alias="LISTWARDEN_SECRET_KEY",
        description="Fernet key(s), comma-separated newest first, for credentials at rest. Unset: generated into a 0600 file beside the SQLite database.",
    )
    redis_url: str | None = Field(
        None,
        alias="REDIS_URL",
        description="Redis URL. Set it to run jobs on `listwarden worker` processes and share per-host SMTP limits across them.",
    )

    # --- verifier identity and network ------------------------------------------------
    helo_name: str | None = Field(
        None,
        alias="LISTWARDEN_HELO_NAME",
        description="Name sent in EHLO/HELO. Unset: the domain of LISTWARDEN_MAIL_FROM. Use this host's own FQDN (with matching reverse DNS) in production.",
    )
    mail_from: str = Field(
        "verify@localhost",
        alias="LISTWARDEN_MAIL_FROM",
        description="Envelope sender for RCPT probes. Its domain must resolve (MX or A); checked at start-up.",
    )
    nameservers: str | None = Field(
        None, alias="LISTWARDEN_NAMESERVERS", description="Comma-separated DNS servers; unset uses /etc/resolv.conf."
    )
    dns_port: int = Field(53, alias="LISTWARDEN_DNS_PORT", description="DNS server port.")
    dns_timeout: float = Field(5.0, alias="LISTWARDEN_DNS_TIMEOUT", description="Seconds per DNS lookup before it counts as unknown.")
    smtp_port: int = Field(25, alias="LISTWARDEN_SMTP_PORT", description="Port of the mail servers probed.")
    smtp_connect_timeout: float = Field(
        8.0,
        alias="LISTWARDEN_SMTP_CONNECT_TIMEOUT",
        description="Seconds to connect and get the 220 banner (longer than Postfix postscreen's 6 s greeting pause).",
    )
    smtp_command_timeout: float = Field(15.0, alias="LISTWARDEN_SMTP_COMMAND_TIMEOUT", description="Seconds per SMTP reply.")
    smtp_per_host: int = Field(3, alias="LISTWARDEN_SMTP_PER_HOST", description="Most concurrent SMTP sessions to one MX host (across all workers with Redis).")
    greylist_max_wait: float = Field(
        90.0, alias="LISTWARDEN_GREYLIST_MAX_WAIT", description="Longest total wait, in seconds, spent retrying a greylisted address."
    )
    smtp_rcpt_per_session: int = Field(
        50, alias="LISTWARDEN_SMTP_RCPT_PER_SESSION", description="Most RCPTs sent in one SMTP session (lowered per host when a server answers 452)."
    )
    smtp_connect_burst: int = Field(8, alias="LISTWARDEN_SMTP_CONNECT_BURST", description="New SMTP sessions one MX host may get at once ...")
    smtp_connect_rate: float = Field(2.0, alias="LISTWARDEN_SMTP_CONNECT_RATE", description="... and then per second.")
    verify_window: int = Field(
        20_000, alias="LISTWARDEN_VERIFY_WINDOW", description="Addresses read ahead while verifying a stream (bounds memory; larger lets more share sessions)."
    )

    # --- Slack ---------------------------------------------------------------------------
    slack_signing_secret: SecretStr | None = Field(None, alias="SLACK_SIGNING_SECRET", description="Slack app signing secret.")
    slack_bot_token: SecretStr | None = Field(None, alias="SLACK_BOT_TOKEN", description="Single-workspace mode: the bot token (xoxb-).")
    slack_app_token: SecretStr | None = Field(None, alias="SLACK_APP_TOKEN", description="Socket Mode: the app-level token (xapp-).")
    slack_client_id: str | None = Field(None, alias="SLACK_CLIENT_ID", description="Multi-workspace OAuth: client id.")
    slack_client_secret: SecretStr | None = Field(None, alias="SLACK_CLIENT_SECRET", description="Multi-workspace OAuth: client secret.")
    slack_api_url: str = Field("https://slack.com/api/", alias="SLACK_API_URL", description="Slack Web API base URL (tests point it at a local server).")

    # --- platform OAuth -------------------------------------------------------------------
    platform_base_urls: str | None = Field(
        None, alias="LISTWARDEN_PLATFORM_BASE_URLS",
        description="Comma-separated slug=URL pairs: the API base URL new connections of a platform use "
                    "(a regional endpoint, an egress proxy, a local emulator), e.g. `mailerlite=https://proxy.internal/ml`.",
    )
    mailchimp_client_id: str | None = Field(None, alias="MAILCHIMP_CLIENT_ID", description="Mailchimp OAuth app client id.")
    mailchimp_client_secret: SecretStr | None = Field(None, alias="MAILCHIMP_CLIENT_SECRET", description="Mailchimp OAuth app client secret.")
    hubspot_client_id: str | None = Field(None, alias="HUBSPOT_CLIENT_ID", description="HubSpot OAuth app client id.")
    hubspot_client_secret: SecretStr | None = Field(None, alias="HUBSPOT_CLIENT_SECRET", description="HubSpot OAuth app client secret.")

    # --- jobs, credits, notices ------------------------------------------------------------
    approval_ttl_hours: float = Field(72.0, alias="LISTWARDEN_APPROVAL_TTL_HOURS", description="Hours a cleanup waits for approval before it expires.")
    four_eyes: bool = Field(True, alias="LISTWARDEN_FOUR_EYES", description="The requester of a cleanup may not approve it.")
    initial_credits: int = Field(0, alias="LISTWARDEN_INITIAL_CREDITS", description="Credits a new workspace starts with.")
    digest_minutes: float = Field(15.0, alias="LISTWARDEN_DIGEST_MINUTES", description="At most one verify-first digest per connection per this many minutes.")
    webhook_max_body: int = Field(1_048_576, alias="LISTWARDEN_WEBHOOK_MAX_BODY", description="Largest webhook body accepted, in bytes (413 above).")
    webhook_lease_seconds: float = Field(
        30.0, alias="LISTWARDEN_WEBHOOK_LEASE_SECONDS",
        description="A webhook delivery being processed is leased this long, renewed every third of it; a crashed processor's deliveries are taken up again once it lapses.",
    )
    webhook_concurrency: int = Field(16, alias="LISTWARDEN_WEBHOOK_CONCURRENCY", description="Webhook deliveries one process works on at once (a slow one never holds up the rest).")
    webhook_processor: bool = Field(True, alias="LISTWARDEN_WEBHOOK_PROCESSOR", description="Process verify-first deliveries, polling, registration and digests in this process (off: only accept them).")
    webhook_cache_seconds: float = Field(
        5.0, alias="LISTWARDEN_WEBHOOK_CACHE_SECONDS",
        description="Seconds a receiver reuses a connection's status and webhook secrets (a disconnect or a new secret takes effect after at most this long).",
    )
    verify_first_cache_seconds: float = Field(
        60.0, alias="LISTWARDEN_VERIFY_FIRST_CACHE_SECONDS", description="An address verified this recently is not verified (or charged) again when it signs up again.",
    )
    poll_seconds: float = Field(60.0, alias="LISTWARDEN_POLL_SECONDS", description="How often platforms without a new-subscriber webhook (SendGrid) are asked for contacts created since the last poll.")
    verify_first_sync_seconds: float = Field(
        30.0, alias="LISTWARDEN_VERIFY_FIRST_SYNC_SECONDS",
        description="How often webhooks are registered for connections that turned verify-first on, and removed for those turned off or disconnected.",
    )
    api_rate_per_minute: int = Field(
        120, alias="LISTWARDEN_API_RATE_PER_MINUTE",
        description="REST API requests per minute per API key (a burst up to this, then 429 with Retry-After; shared through Redis when REDIS_URL is set).",
    )
    api_max_upload_bytes: int = Field(
        50 * 1_048_576, alias="LISTWARDEN_API_MAX_UPLOAD_BYTES",
        description="Largest CSV/TXT file accepted by POST /v1/jobs, in bytes (413 above). Other API bodies are capped at 1 MiB.",
    )
    credits_metered: bool = Field(
        True, alias="LISTWARDEN_CREDITS_METERED",
        description="Charge credits for verification (a ledger per workspace; `listwarden credits grant`). Off: usage is still recorded but never refused.",
    )

    # --- job engine (core/jobs) ---------------------------------------------------------------
    job_concurrency: int = Field(2, alias="LISTWARDEN_JOB_CONCURRENCY", description="Jobs one process (serve or worker) runs at the same time.")
    job_lease_seconds: float = Field(
        30.0, alias="LISTWARDEN_JOB_LEASE_SECONDS",
        description="A running job's lease in the database, renewed every third of it; a crashed holder's jobs are taken over once it lapses.",
    )
    job_chunk: int = Field(500, alias="LISTWARDEN_JOB_CHUNK", description="Items charged, verified and recorded per chunk (and contacts changed per platform call).")
    job_progress_seconds: float = Field(1.0, alias="LISTWARDEN_JOB_PROGRESS_SECONDS", description="Least time between two progress events of one job.")
    job_sweep_seconds: float = Field(5.0, alias="LISTWARDEN_JOB_SWEEP_SECONDS", description="How often a runner looks for abandoned jobs and expired approvals.")
    redis_prefix: str = Field(
        "listwarden", alias="LISTWARDEN_REDIS_PREFIX",
        description="Prefix of every Redis key, stream and channel Listwarden uses (several instances can share one Redis).",
    )
    results_retention_days: float = Field(
        30.0, alias="LISTWARDEN_RESULTS_RETENTION_DAYS",
        description="Days a validation-API result stays fetchable by contextId (and an Idempotency-Key replay is kept: one day).",
    )

    @property
    def sqlite_path(self) -> Path | None:
        """The SQLite file, when the database is SQLite; None for PostgreSQL."""
        url = self.database_url
        if not url.startswith("sqlite://"):
            return None
        path = url.removeprefix("sqlite://").split("?", 1)[0]
        if path in ("", ":memory:"):
            return None
        return Path(path)

    def platform_base_urls_map(self) -> dict[str, str]:
        """LISTWARDEN_PLATFORM_BASE_URLS as {slug: URL}."""
        pairs = (part.partition("=") for part in (self.platform_base_urls or "").split(","))
        return {slug.strip(): url.strip() for slug, _, url in pairs if slug.strip() and url.strip()}

    def nameserver_list(self) -> list[str] | None:
        if not self.nameservers:
            return None
        return [s.strip() for s in self.nameservers.split(",") if s.strip()]


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment."""
    return Settings()


def describe_settings() -> list[tuple[str, str, str]]:
    """(environment variable, default, description) for every setting, for docs and `listwarden config`."""
    rows: list[tuple[str, str, str]] = []
    for name, field in Settings.model_fields.items():
        default = field.default
        shown = "(unset)" if default is None else str(default)
        rows.append((field.alias or name.upper(), shown, field.description or ""))
    return rows
