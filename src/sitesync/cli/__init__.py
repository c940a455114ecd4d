"""Entry point of the ``sitesync`` command: runs the typer app and turns errors into one line.

User errors exit with code 2, other sitesync errors with 1; neither prints a traceback (set
``SITESYNC_DEBUG=1`` to see one). Secrets never reach these messages: they are built from names
and masked URLs only.
"""

from __future__ import annotations

import os
import sys


def main() -> None:
    from typer import Abort, TyperException

    from sitesync import redaction
    from sitesync.cli.app import app
    from sitesync.cli.render import err_console
    from sitesync.errors import SitesyncError, UserError, one_line

    redaction.install()
    debug = os.environ.get("SITESYNC_DEBUG") == "1"
    try:
        code = app(prog_name="sitesync", standalone_mode=False)
        sys.exit(code if isinstance(code, int) else 0)
    except TyperException as exc:  # command-line usage errors: one line, exit 2
        ctx = getattr(exc, "ctx", None)
        where = f"; see `{ctx.command_path} --help`" if ctx is not None else "; see `sitesync --help`"
        message = exc.format_message() if hasattr(exc, "format_message") else str(exc)
        err_console.print(one_line(f"error: {message}{where}"), markup=False, soft_wrap=True)
        sys.exit(getattr(exc, "exit_code", 2) or 2)
    except Abort:
        sys.exit(130)
    except UserError as exc:
        if debug:
            raise
        err_console.print(one_line(f"error: {exc}"), markup=False, soft_wrap=True)
        sys.exit(2)
    except SitesyncError as exc:
        if debug:
            raise
        err_console.print(one_line(f"error: {exc}"), markup=False, soft_wrap=True)
        sys.exit(getattr(exc, "exit_code", 1))
    except KeyboardInterrupt:
        sys.exit(130)
