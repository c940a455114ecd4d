"""Options of an rclone site (``provider = "rclone"``)."""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import Field, SecretStr, field_validator, model_validator

from sitesync.providers._cloud import PlatformPath, check_platform_path
from sitesync.providers.base import LEFTOVER_AGE_SECONDS, Destination, LocalOnly, ProviderConfig

INLINE_REMOTE = "sitesync"
_ENV_SAFE = re.compile(r"^[A-Za-z0-9_]+$")
_KEY = re.compile(r"^[a-z0-9_]+$")
MIB = 1024 * 1024
# backend options that name a program or command, a file or socket of this machine, credentials it
# holds (environment, agent, managed identity, AWS profile) or another remote (which may be one of
# this machine's configured remotes, or an on-the-fly ":backend,key=value:" string)
LOCAL_OPTION_KEYS = (
    r"(^|_)(command|cmd|file|path|socket)$|^(ssh|env_auth|key_use_agent|profile|config_profile|remote|upstreams)$"
    r"|^(use_)?msi|^config"
)
# backend options that say where rclone connects (and sends the site's password or token)
DESTINATION_KEYS = r"(^|_)(host|hostname|url|endpoint|server|auth)$"
# rclone options that hold secrets (IsPassword or Sensitive credentials in `rclone config providers`)
SECRET_OPTIONS = frozenset(
    {
        "pass",
        "password",
        "password2",
        "secret_access_key",
        "session_token",
        "token",
        "client_secret",
        "key_pem",
        "key_file_pass",
        "sse_customer_key",
        "sse_customer_key_base64",
        "bearer_token",
        "account_key",
        "sas_url",
        "service_account_credentials",
        "key",
    }
)


class RcloneConfig(ProviderConfig):
    remote: Annotated[
        str | None, LocalOnly("names a remote of this machine's rclone config, with the credentials kept there")
    ] = None
    """A remote defined in an rclone config file (``rclone config``), by name."""
    config_file: Annotated[PlatformPath | None, LocalOnly("names a file the service reads credentials from")] = None
    """That config file (default: rclone's own, ``rclone config file``); ``{ENV_VAR}`` placeholders expanded."""
    type: str | None = None
    """Instead of ``remote``: define the remote here, by backend type (``s3``, ``sftp``, ``webdav``...)."""
    options: Annotated[
        dict[str, str | int | float | bool],
        LocalOnly("names a program, a file of this machine, its credentials or another remote", LOCAL_OPTION_KEYS),
        Destination(("secrets", "remote"), DESTINATION_KEYS),
    ] = Field(default_factory=dict)
    """Backend options (``host = "..."``, ``user = "..."``), as in rclone.conf; also override a named remote's."""
    secrets: dict[str, SecretStr] = Field(default_factory=dict)
    """Secret backend options (``pass``, ``secret_access_key``...): literal, ``env:NAME`` or ``file:PATH``.
    Given to rclone through its environment (obscured when rclone wants them obscured), never on a
    command line."""
    rclone: Annotated[PlatformPath | None, LocalOnly("names a program the service runs")] = None
    """The rclone executable (default: the one installed with ``sitesync[rclone]``, else ``rclone`` on PATH)."""
    extra_args: Annotated[
        list[str], LocalOnly("is part of a program's command line (flags such as --config read files and run commands)")
    ] = Field(default_factory=list)
    """More rclone flags, e.g. ``["--s3-upload-concurrency", "8"]``. Never put secrets here."""
    stream_threshold: int = Field(8 * MIB, ge=0)
    """Files up to this size go through the long-running ``rclone rcd``; bigger ones are streamed
    through ``rclone rcat`` (no local spooling)."""
    connect_timeout: float = Field(15.0, gt=0)
    """Seconds rclone waits to connect before the site counts as unreachable."""
    leftover_age: float = Field(LEFTOVER_AGE_SECONDS, ge=0)
    """Temporary files older than this (seconds) are leftovers of interrupted writes (a killed
    upload): removed by ``fsck`` and the worker's sweep."""

    @field_validator("config_file", "rclone", mode="before")
    @classmethod
    def _platform_path(cls, value: Any) -> Any:
        return check_platform_path(value)

    @field_validator("options", "secrets")
    @classmethod
    def _keys(cls, value: dict[str, Any]) -> dict[str, Any]:
        for key in value:
            if not _KEY.match(key):
                raise ValueError(f"invalid rclone option name {key!r}: use rclone's names (lower case, '_')")
        return value

    @field_validator("options")
    @classmethod
    def _no_secrets_in_options(cls, value: dict[str, Any]) -> dict[str, Any]:
        for key in value:
            if key in SECRET_OPTIONS or key.endswith(("pass", "password", "secret", "token")):
                raise ValueError(
                    f"{key!r} is a secret: give it under secrets (e.g. secrets.{key}=env:NAME), not options"
                )
        return value

    @field_validator("extra_args")
    @classmethod
    def _flags(cls, value: list[str]) -> list[str]:
        if value and not value[0].startswith("-"):
            raise ValueError("extra_args must start with a flag such as --transfers")
        return value

    @model_validator(mode="after")
    def _remote_or_type(self) -> RcloneConfig:
        if (self.remote is None) == (self.type is None):
            raise ValueError(
                "set exactly one of remote (a remote from an rclone config file) or type (an inline remote)"
            )
        if self.type is not None and self.config_file is not None:
            raise ValueError("config_file is only used with remote; an inline remote (type) needs none")
        if self.remote is not None and (self.options or self.secrets) and not _ENV_SAFE.match(self.remote):
            raise ValueError(
                f"remote {self.remote!r}: options and secrets can only override a remote whose name has "
                "letters, digits and '_' only"
            )
        overlap = set(self.options) & set(self.secrets)
        if overlap:
            raise ValueError(f"{sorted(overlap)} given both in options and in secrets; keep one")
        return self

    @property
    def remote_name(self) -> str:
        return self.remote or INLINE_REMOTE
