"""CLI commands about access: the API token (``token show``/``token new``), a dashboard login link
for the running server (``dashboard``), and secrets in the OS keyring (``secret set``/``delete``).

Registered on the main app by ``cli/app.py``. A secret is never taken from the command line (it
would show in ``ps`` and the shell history): it is typed at a hidden prompt or read from stdin.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from sitesync.cli.app import JsonOpt, app, client
from sitesync.cli.render import console, err_console, print_json
from sitesync.errors import InvalidInputError

token_app = typer.Typer(help="This machine's API token (what `sitesync serve` requires).", no_args_is_help=True)
secret_app = typer.Typer(help="Secrets in this user's OS keyring, for keyring:NAME references.", no_args_is_help=True)
app.add_typer(token_app, name="token")
app.add_typer(secret_app, name="secret")

NameArg = Annotated[str, typer.Argument(help="Entry name; options refer to it as keyring:NAME.")]


@token_app.command("show")
def token_show() -> None:
    """Print this machine's API token (created if there is none yet), for curl or Prometheus."""
    from sitesync.api.auth import ensure_token
    from sitesync.settings.machine import machine_paths

    sys.stdout.write(ensure_token(machine_paths()) + "\n")


@token_app.command("new")
def token_new() -> None:
    """Replace the token: dashboard sessions and clients using the old one stop working once the
    server restarts with the new one."""
    from sitesync.api.auth import new_token
    from sitesync.settings.machine import machine_paths

    paths = machine_paths()
    new_token(paths)
    console.print(
        f"wrote a new token to {paths.api_token_file}; restart `sitesync serve` to use it", markup=False, soft_wrap=True
    )


@app.command()
def dashboard(
    url: Annotated[
        str | None,
        typer.Option("--url", help="The server (default: the one running on this machine, or SITESYNC_URL)."),
    ] = None,
    token: Annotated[
        str | None, typer.Option("--token", envvar="SITESYNC_TOKEN", help="Its token (default: this machine's).")
    ] = None,
    open_browser: Annotated[bool, typer.Option("--open", help="Open the link in the default browser.")] = False,
    json: JsonOpt = False,
) -> None:
    """Print a one-time login link for the running server's dashboard (asked of the server with the
    token, so only the user who can read the token gets one)."""
    from sitesync.api.remote import ApiClient  # httpx: imported only when needed (start-up time)

    with ApiClient(url, token) as api:
        link = api.login_link()
    if json:
        print_json(link)
    else:
        sys.stdout.write(link["url"] + "\n")
        err_console.print(f"valid once, for {link['expires_in'] // 60} minutes", markup=False)
    if open_browser:
        import webbrowser

        webbrowser.open(link["url"])


@secret_app.command("set")
def secret_set(
    name: NameArg,
    stdin: Annotated[bool, typer.Option("--stdin", help="Read the secret from standard input.")] = False,
    json: JsonOpt = False,
) -> None:
    """Store a secret in this user's keyring (typed at a hidden prompt, or --stdin), then use
    keyring:NAME as an option's value in this machine's local settings."""
    if stdin:
        value = sys.stdin.read().rstrip("\r\n")
    elif sys.stdin.isatty():
        value = typer.prompt(f"secret for {name}", hide_input=True, confirmation_prompt=True)
    else:
        raise InvalidInputError("no terminal to type the secret in: pass --stdin and pipe it")
    with client() as c:
        reference = c.store_secret(name, value)
    if json:
        print_json({"reference": reference})
        return
    console.print(
        f"stored; use {reference} as the value, e.g. "
        f"`sitesync settings set --local sites.SITE.options.KEY {reference}`",
        markup=False,
        soft_wrap=True,
    )


@secret_app.command("delete")
def secret_delete(name: NameArg) -> None:
    """Remove a secret from this user's keyring."""
    with client() as c:
        deleted = c.delete_secret(name)
    console.print(f"deleted keyring entry {name}" if deleted else f"the keyring has no entry {name}", markup=False)


__all__ = ["dashboard", "secret_app", "token_app"]
