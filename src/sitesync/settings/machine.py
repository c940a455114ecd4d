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
    def log_dir(self) -> Path:
        return self.data_dir / "logs"


def machine_paths(home: str | os.PathLike[str] | None = None) -> MachinePaths:
    home = home or os.environ.get("SITESYNC_HOME")
    if home:
        base = Path(home).expanduser().absolute()
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
        value = path.read_text(encoding="utf-8").strip()
        if SITE_NAME_RE.match(value):
            return value
        raise InvalidSettingError(f"{path} holds an invalid site id {value!r}; fix or delete the file")
    value = f"{_slug(socket.gethostname())}-{secrets.token_hex(3)}"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(value + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return value


def load_local_settings(paths: MachinePaths) -> LocalSettings:
    path = paths.local_settings_file
    if not path.exists():
        return LocalSettings()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise InvalidSettingError(
            f"local settings file {path} is not valid TOML ({exc}); fix it or move it away to start fresh"
        ) from None
    try:
        return LocalSettings.model_validate(data)
    except ValidationError as exc:
        raise InvalidSettingError(
            f"local settings file {path}: {describe_validation_error(exc)}; fix it or move it away"
        ) from None


def save_local_settings(paths: MachinePaths, settings: LocalSettings) -> None:
    path = paths.local_settings_file
    path.parent.mkdir(parents=True, exist_ok=True)
    data: dict[str, Any] = settings.model_dump(mode="json", exclude_none=True, exclude_defaults=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(tomli_w.dumps(data), encoding="utf-8")
    os.replace(tmp, path)
