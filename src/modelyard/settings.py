"""One typed settings object; environment variables use the ``MODELYARD_`` prefix."""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEFAULT_SECRET = "modelyard-local-insecure-secret"


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
WILDCARD_ADDRESSES = frozenset({"0.0.0.0", "::", "[::]"})


def host_name(value: str) -> str:
    """A host name as the Host header carries it, lower-cased, without IPv6 brackets:
    ``"[::1]"`` -> ``"::1"``; ``"*.example.com"`` is a pattern of subdomains."""
    name = value.strip().lower()
    bare = name[1:-1] if name.startswith("[") and name.endswith("]") else name
    if name == "*" or (name.startswith("*.") and "*" not in name[1:]):
        return name
    if not bare or "*" in bare or "/" in bare or (":" in bare and not _is_ip(bare)):
        raise ValueError(
            f"{value!r} is not a host name: give a name or address without a scheme or port "
            "(modelyard.example.com, 10.0.0.5, [::1]), '*.example.com' or '*'"
        )
    return bare


def web_origin(value: str) -> str:
    """``scheme://host[:port]`` as browsers send it in ``Origin``, default port left out."""
    parts = urlsplit(value.strip().lower())
    try:
        port = parts.port
    except ValueError:
        port = -1
    if (
        parts.scheme not in ("http", "https")
        or not parts.hostname
        or port == -1
        or (parts.path not in ("", "/") or parts.query or parts.fragment or parts.username)
    ):
        raise ValueError(
            f"{value!r} is not a web origin: give scheme://host[:port] with no path, "
            "e.g. https://notebooks.example.com or http://localhost:8888"
        )
    default = {"http": 80, "https": 443}[parts.scheme]
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return f"{parts.scheme}://{host}" + (f":{port}" if port not in (None, default) else "")


def _is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def plugin_modules(value: str) -> list[str]:
    """``"a.b, c"`` -> ``["a.b", "c"]``."""
    return [name.strip() for name in value.split(",") if name.strip()]


class Settings(BaseSettings):
    """Runtime configuration of a modelyard server or local client."""

    model_config = SettingsConfigDict(env_prefix="MODELYARD_", extra="ignore")

    data_dir: Path = Field(
        default=Path("modelyard-data"),
        description="Folder holding the embedded SQLite database and the local artifact root.",
    )
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL of the metadata database; defaults to SQLite in data_dir.",
    )
    artifact_root: str | None = Field(
        default=None,
        description="Folder for artifacts, or s3://bucket/prefix for S3-compatible object "
        "storage (endpoint and credentials from the usual AWS_* variables); defaults to "
        "data_dir/artifacts.",
    )
    artifact_redirect_downloads: bool = Field(
        default=False,
        description="Answer artifact downloads with a redirect to a presigned URL of the "
        "object store, when the store has them (S3), instead of streaming through the server.",
    )
    artifact_store_timeout: float = Field(
        default=10.0, gt=0, description="Seconds to wait for the object store to connect or answer."
    )
    artifact_cache_bytes: int = Field(
        default=1024**3,
        ge=0,
        description="Room for local copies of object-store artifacts the server reads itself "
        "(evaluation tables); the least recently used are removed beyond it.",
    )
    host: str = Field(default="127.0.0.1", description="Address `modelyard serve` binds to.")
    port: int = Field(default=5170, ge=1, le=65535, description="Port `modelyard serve` binds to.")
    secret_key: str = Field(
        default=DEFAULT_SECRET, description="Secret for signing; must be set outside local mode."
    )
    max_upload_bytes: int = Field(
        default=2 * 1024**3, ge=1, description="Largest artifact upload accepted, in bytes."
    )
    max_body_bytes: int = Field(
        default=32 * 1024**2,
        ge=1,
        description="Largest body of a JSON API request (metric batches included, JSON or "
        "Arrow), in bytes; a larger one is a 413 before it is read. The default holds a full "
        "batch (max_batch_points) even at about 330 bytes a point.",
    )
    max_table_bytes: int = Field(
        default=1024**3,
        ge=1,
        description="Largest table of predictions uploaded for an evaluation (the API's body or "
        "the portal's file), in bytes; it is held in memory while it is read.",
    )
    max_form_bytes: int = Field(
        default=1024**2, ge=1, description="Largest body of a portal form, in bytes."
    )
    upload_grace_seconds: float = Field(
        default=3600,
        ge=0,
        description="Seconds an unfinished upload may go without receiving data before the "
        "server removes what it left (temporary files, S3 multipart uploads), at start and "
        "every 10 minutes.",
    )
    run_lost_after_seconds: float = Field(
        default=300,
        ge=0,
        description="Seconds a running run may go without a sign of life from its client (a "
        "heartbeat, which the SDK sends from a background thread, or a write to the run) before "
        "the server marks it lost; it is running again when its client is heard from. The "
        "server looks every min(60, this / 4) seconds and at start; 0 never marks runs lost.",
    )
    run_stale_after_seconds: float = Field(
        default=120,
        ge=0,
        description="Seconds a running run may go without a sign of life before the portal "
        "flags it as possibly stale (in the runs table and on its page), a warning before "
        "MODELYARD_RUN_LOST_AFTER_SECONDS marks it lost; 0 never flags runs.",
    )
    max_batch_points: int = Field(
        default=100_000, ge=1, description="Most metric points accepted in one request."
    )
    auto_migrate: bool = Field(
        default=True, description="Create the schema when the database is empty on start."
    )
    plugins: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Plugin modules to load by import name (comma-separated in the environment), "
        "besides those installed with a `modelyard` entry point.",
    )
    allowed_hosts: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Host names the server answers (the request's Host header, any port), "
        "besides its own: in local mode localhost, 127.0.0.1 and [::1], otherwise the address "
        "in MODELYARD_HOST. Comma-separated in the environment; '*.example.com' takes every "
        "subdomain, '*' any name (no check). Other names get 400, so a web page that rebinds "
        "its own name to this machine's address cannot reach the server.",
    )
    allowed_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Web origins (scheme://host[:port]), besides the server's own, whose pages "
        "may send POST, PUT, PATCH or DELETE requests from a browser; comma-separated in the "
        "environment. A browser request from any other page gets 403.",
    )
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Web origins (scheme://host[:port]) whose pages may call the API with an API "
        "token and read its answers (CORS); none by default. Cookies are never shared with "
        "them. Comma-separated in the environment.",
    )
    session_idle_minutes: float = Field(
        default=8 * 60,
        gt=0,
        description="Minutes a browser session may go unused before it ends.",
    )
    session_max_hours: float = Field(
        default=7 * 24,
        gt=0,
        description="Hours after signing in that a browser session ends, used or not.",
    )
    proxy_user_header: str | None = Field(
        default=None,
        description="Single sign-on behind a proxy: the header naming the signed-in user (an "
        "e-mail address or a user name), e.g. X-Forwarded-Email as oauth2-proxy sets it. Taken "
        "only from MODELYARD_TRUSTED_PROXIES; a request carrying it from elsewhere is refused. "
        "A user it names for the first time is created then.",
    )
    trusted_proxies: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Addresses or networks (10.0.0.5, 10.0.0.0/24) of the proxies whose "
        "identity header is trusted; comma-separated in the environment.",
    )
    proxy_default_group: str | None = Field(
        default=None,
        description="Group a user the proxy names for the first time joins, so they start "
        "with the roles that group has in projects.",
    )
    event_dispatcher: bool = Field(
        default=True, description="Deliver events to `on_event` hooks from this server process."
    )
    event_poll_interval: float = Field(
        default=0.5, gt=0, le=60, description="Seconds between looks for new events when idle."
    )
    event_handler_timeout: float = Field(
        default=30.0, gt=0, le=3600, description="Seconds an `on_event` handler may take."
    )
    event_max_attempts: int = Field(
        default=25, ge=1, description="Attempts at delivering an event before giving it up."
    )
    event_retention_hours: float = Field(
        default=168,
        ge=0,
        description="Hours a delivered or given-up event stays in the outbox before it is "
        "removed (the change log keeps the history); 0 keeps them all.",
    )

    @field_validator("plugins", mode="before")
    @classmethod
    def _split_plugins(cls, value: object) -> object:
        return plugin_modules(value) if isinstance(value, str) else value

    @field_validator("allowed_hosts", "allowed_origins", "cors_origins", mode="before")
    @classmethod
    def _split_names(cls, value: object) -> object:
        return plugin_modules(value) if isinstance(value, str) else value

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _split_proxies(cls, value: object) -> object:
        return plugin_modules(value) if isinstance(value, str) else value

    @field_validator("trusted_proxies")
    @classmethod
    def _check_proxies(cls, value: list[str]) -> list[str]:
        for network in value:
            try:
                ipaddress.ip_network(network, strict=False)
            except ValueError:
                raise ValueError(
                    f"{network!r} is not an address or network (give 10.0.0.5 or 10.0.0.0/24)"
                ) from None
        return value

    @field_validator("proxy_user_header")
    @classmethod
    def _check_header(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"[A-Za-z0-9-]{1,100}", value):
            raise ValueError(f"{value[:100]!r} is not a header name")
        return value.lower() if value else None

    @model_validator(mode="after")
    def _proxy_needs_proxies(self) -> Settings:
        if self.proxy_user_header and not self.trusted_proxies:
            raise ValueError(
                "set MODELYARD_TRUSTED_PROXIES to the proxy's address to trust "
                "MODELYARD_PROXY_USER_HEADER"
            )
        return self

    @field_validator("allowed_hosts")
    @classmethod
    def _check_hosts(cls, value: list[str]) -> list[str]:
        return [host_name(name) for name in value]

    @field_validator("allowed_origins", "cors_origins")
    @classmethod
    def _check_origins(cls, value: list[str]) -> list[str]:
        return [web_origin(origin) for origin in value]

    @model_validator(mode="after")
    def _refuse_default_secret(self) -> Settings:
        if not self.local_mode and self.secret_key == DEFAULT_SECRET:
            raise ValueError(
                f"set MODELYARD_SECRET_KEY to a long random string to serve on {self.host} "
                "(a non-loopback address); only 127.0.0.1 and localhost run without one"
            )
        return self

    @model_validator(mode="after")
    def _refuse_unnamed_wildcard(self) -> Settings:
        if self.host in WILDCARD_ADDRESSES and not self.allowed_hosts:
            raise ValueError(
                f"set MODELYARD_ALLOWED_HOSTS to the names clients use to reach the server "
                f"(e.g. modelyard.example.com,10.0.0.5) to serve on {self.host} (every "
                "address), or to '*' to answer any name"
            )
        return self

    @property
    def local_mode(self) -> bool:
        """Bound to loopback: a single implicit user, no authentication."""
        return _is_loopback(self.host)

    @property
    def answered_hosts(self) -> list[str]:
        """The host names requests may name: the defaults of the mode and those listed."""
        own = list(LOOPBACK_NAMES) if self.local_mode else []
        if not self.local_mode and self.host not in WILDCARD_ADDRESSES:
            own.append(host_name(self.host))
        return [*own, *(name for name in self.allowed_hosts if name not in own)]

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'modelyard.db').resolve()}"

    @property
    def artifact_root_is_s3(self) -> bool:
        return (self.artifact_root or "").startswith("s3://")

    @property
    def resolved_artifact_root(self) -> Path:
        """The local artifact folder (not used when artifact_root is an s3:// URL)."""
        root = Path(self.artifact_root) if self.artifact_root else self.data_dir / "artifacts"
        return root.resolve()
