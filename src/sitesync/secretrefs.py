"""Secret values in provider options: a reference (``env:NAME``, ``file:PATH``, ``keyring:NAME``)
or, still accepted, the literal value.

Options models declare secrets as ``pydantic.SecretStr`` so they are masked wherever settings are
shown. ``reveal`` is the one place a provider turns one into the real value, at use time; every
value it returns is remembered by ``sitesync.redaction`` so that no log line shows it.

References are the recommended form: the value then lives outside the settings, in the service's
environment, in a file only its user can read, or in the OS keyring of that user (the ``keyring``
library: macOS Keychain, Windows Credential Locker, Secret Service on a Linux desktop, or a
``keyrings.alt`` file backend on a headless machine). ``keyring:NAME`` reads the entry NAME of the
service ``sitesync`` (``sitesync secret set NAME`` stores one); ``keyring:SERVICE/NAME`` reads an
entry another program stored. A reference reads this machine's secrets, so it is only accepted from
this machine's local settings (see ``settings/scopes.py``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from sitesync.errors import InvalidInputError, SiteUnavailableError
from sitesync.redaction import install, remember

KEYRING_SERVICE = "sitesync"


def reveal(secret: SecretStr | str | None, *, site: str, key: str) -> str | None:
    """The secret's value; ``env:NAME`` reads the environment, ``file:PATH`` a file and
    ``keyring:NAME`` the OS keyring.

    A missing variable, unreadable file or keyring entry makes the site unavailable with a message
    that names the option and the variable, file or entry, never the value.
    """
    if secret is None:
        return None
    raw = secret.get_secret_value() if isinstance(secret, SecretStr) else secret
    install()
    value = _resolve(raw, site=site, key=key)
    remember(value)
    return value


def _resolve(raw: str, *, site: str, key: str) -> str:
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
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
            raise SiteUnavailableError(f"site {site}: option {key}: cannot read {path} ({reason})", site=site) from None
    if raw.startswith("keyring:"):
        service, name = keyring_entry(raw[len("keyring:") :])
        try:
            value = _keyring().get_password(service, name)
        except Exception as exc:  # any backend failure (locked, no backend, D-Bus gone) is one line
            raise SiteUnavailableError(
                f"site {site}: option {key}: cannot read keyring entry {service}/{name}: {_keyring_problem(exc)}",
                site=site,
            ) from None
        if value is None:
            raise SiteUnavailableError(
                f"site {site}: option {key}: the keyring of this user has no entry {service}/{name}; "
                f"store it with `sitesync secret set {name}`",
                site=site,
            )
        return value
    return raw


def keyring_entry(reference: str) -> tuple[str, str]:
    """``NAME`` -> (``sitesync``, NAME); ``SERVICE/NAME`` -> (SERVICE, NAME)."""
    service, sep, name = reference.rpartition("/")
    if not sep:
        service = KEYRING_SERVICE
    if not name or not service:
        raise InvalidInputError(f"invalid keyring reference {reference!r}: use keyring:NAME or keyring:SERVICE/NAME")
    return service, name


def _keyring() -> Any:
    try:
        import keyring
    except ImportError:
        raise SiteUnavailableError("the keyring package is not installed; pip install keyring") from None
    return keyring


def _keyring_problem(exc: Exception) -> str:
    name = type(exc).__name__
    if name == "NoKeyringError":
        return (
            "no keyring backend is available for this user (on a headless machine install keyrings.alt "
            "and set PYTHON_KEYRING_BACKEND, or use env: or file:)"
        )
    return f"{name}: {str(exc).splitlines()[0] if str(exc) else 'keyring error'}"


def store_in_keyring(name: str, value: str) -> str:
    """Store ``value`` as entry NAME (service ``sitesync``) of this user's keyring; returns the
    reference to put in an option (``keyring:NAME``)."""
    service, entry = keyring_entry(name)
    if not value:
        raise InvalidInputError("the secret is empty; nothing was stored")
    try:
        _keyring().set_password(service, entry, value)
    except SiteUnavailableError as exc:
        raise InvalidInputError(str(exc)) from None
    except Exception as exc:
        raise InvalidInputError(f"cannot store {service}/{entry} in the keyring: {_keyring_problem(exc)}") from None
    return f"keyring:{name}"


def delete_from_keyring(name: str) -> bool:
    """Delete entry NAME from this user's keyring; ``False`` if there was none."""
    service, entry = keyring_entry(name)
    keyring = _keyring()
    try:
        keyring.delete_password(service, entry)
    except keyring.errors.PasswordDeleteError:
        return False
    except Exception as exc:
        raise InvalidInputError(f"cannot delete {service}/{entry} from the keyring: {_keyring_problem(exc)}") from None
    return True


__all__ = ["KEYRING_SERVICE", "delete_from_keyring", "keyring_entry", "reveal", "store_in_keyring"]
