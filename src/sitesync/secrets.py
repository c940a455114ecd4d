"""Secret values in provider options: given literally, as ``env:NAME`` or as ``file:PATH``.

Options models declare secrets as ``pydantic.SecretStr`` so they are masked wherever settings are
shown. ``reveal`` is the one place a provider turns one into the real value, at use time.
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import SecretStr

from sitesync.errors import SiteUnavailableError


def reveal(secret: SecretStr | str | None, *, site: str, key: str) -> str | None:
    """The secret's value; ``env:NAME`` reads the environment, ``file:PATH`` reads a file.

    A missing variable or unreadable file makes the site unavailable with a message that names
    the option and the variable or file, never the value.
    """
    if secret is None:
        return None
    raw = secret.get_secret_value() if isinstance(secret, SecretStr) else secret
    if raw.startswith("env:"):
        name = raw[4:]
        value = os.environ.get(name)
        if value is None:
            raise SiteUnavailableError(
                f"site {site}: option {key} names environment variable {name}, which is not set", site=site
            )
        return value
    if raw.startswith("file:"):
        path = Path(raw[5:]).expanduser()
        try:
            return path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise SiteUnavailableError(
                f"site {site}: option {key}: cannot read {path} ({exc.strerror})", site=site
            ) from None
    return raw
