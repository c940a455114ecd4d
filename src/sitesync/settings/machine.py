"""This machine: where its config and data live, its stable site id, and its local settings file.

``SITESYNC_HOME`` puts everything of one installation under one folder (``config/`` and ``data/``);
otherwise the user's platform config and data dirs are used. ``SITESYNC_SITE_ID`` overrides the
generated site id (service accounts, tests).
"""

from __future__ import annotations

import os
import re
import secrets
import socket
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import platformdirs
import tomli_w
from pydantic import ValidationError

from sitesync.errors import InvalidSettingError
from sitesync.private import describe_os_error, write_private_file
from sitesync.settings.models import SITE_NAME_RE, LocalSettings
from sitesync.settings.validation import describe_validation_error

APP_NAME = "sitesync"


@dataclass(frozen=True)
class MachinePaths:
    config_dir: Path
    data_dir: Path

    @property
    def local_settings_file(self) -> Path:
        return self.config_dir / "local.toml"

    @property
    def api_token_file(self) -> Path:
        """The token ``sitesync serve`` requires (created on its first start, mode 0600)."""
        return self.config_dir / "api_token"

    @property
    def site_id_file(self) -> Path:
        return self.config_dir / "site_id"

    @property
    def default_db_file(self) -> Path:
        return self.data_dir / "sitesync.db"

    @property
    def default_local_root(self) -> Path:
        return self.data_dir / "local_site"

    @property
    def wake_dir(self) -> Path:
        return self.data_dir / "wake"

    @property
    def bandwidth_dir(self) -> Path:
        """The shared bandwidth buckets of every worker process on this machine."""
        return self.data_dir / "bandwidth"


def machine_paths(home: str | os.PathLike[str] | None = None) -> MachinePaths:
    home = home or os.environ.get("SITESYNC_HOME")
    if home:
        base = Path(home).expanduser().absolute()
        if base.exists() and not base.is_dir():
            raise InvalidSettingError(
                f"SITESYNC_HOME={home} is a file, not a folder; point it at a folder (it is created if missing)"
            )
        return MachinePaths(config_dir=base / "config", data_dir=base / "data")
    return MachinePaths(
        config_dir=Path(platformdirs.user_config_dir(APP_NAME)),
        data_dir=Path(platformdirs.user_data_dir(APP_NAME)),
    )


def _slug(text: str) -> str:
    slug = re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")
    return slug[:40] or "machine"


def site_id(paths: MachinePaths) -> str:
    """This machine's site id: from ``SITESYNC_SITE_ID``, else generated once and stored."""
    override = os.environ.get("SITESYNC_SITE_ID")
    if override:
        if not SITE_NAME_RE.match(override) or override in ("local", "studio"):
            raise InvalidSettingError(
                f"SITESYNC_SITE_ID={override!r} is not a valid site id: use letters, digits, '_', '.', '-' "
                "and not 'local' or 'studio'"
            )
        return override
    path = paths.site_id_file
    if path.exists():
        value = _read_text(path, "site id file").strip()
        if SITE_NAME_RE.match(value):
            return value
        raise InvalidSettingError(f"{path} holds an invalid site id {value!r}; fix or delete the file")
    value = f"{_slug(socket.gethostname())}-{secrets.token_hex(3)}"
    write_private_file(path, value + "\n", what="site id file")
    return value


def _read_text(path: Path, what: str) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise InvalidSettingError(f"{what} {path} is not UTF-8 text; fix it or move it away") from None
    except OSError as exc:
        raise InvalidSettingError(f"cannot read the {what} {path}: {describe_os_error(exc)}") from None


def load_local_settings(paths: MachinePaths) -> LocalSettings:
    path = paths.local_settings_file
    if not path.exists():
        return LocalSettings()
    text = _read_text(path, "local settings file")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InvalidSettingError(
            f"local settings file {path} is not valid TOML ({exc}); fix it or move it away to start fresh"
        ) from None
    except RecursionError:
        raise InvalidSettingError(
            f"local settings file {path} nests tables or arrays too deeply; fix it or move it away to start fresh"
        ) from None
    try:
        return LocalSettings.model_validate(data)
    except ValidationError as exc:
        raise InvalidSettingError(
            f"local settings file {path}: {describe_validation_error(exc)}; fix it or move it away"
        ) from None


def save_local_settings(paths: MachinePaths, settings: LocalSettings) -> None:
    data: dict[str, Any] = settings.model_dump(mode="json", exclude_none=True, exclude_defaults=True)
    write_private_file(paths.local_settings_file, tomli_w.dumps(data), what="local settings file")
