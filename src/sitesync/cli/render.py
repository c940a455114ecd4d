"""Terminal rendering for the CLI: sizes, times, status colours, tables and the live sync view.

rich is imported on first use (``console`` and ``err_console`` are made when something is printed):
``sitesync --help`` and the ``--json`` outputs never need it, and every process pays its import.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console, Group, JustifyMethod
    from rich.table import Table
    from rich.text import Text

    from sitesync.engine.progress import ProgressSnapshot


class LazyConsole:
    """A rich ``Console`` made with these options when first used; stands for it everywhere
    (attributes and methods are the console's)."""

    def __init__(self, **options: Any) -> None:
        self._options = options
        self._console: Console | None = None

    @property
    def real(self) -> Console:
        """The console itself, for code that wants a rich ``Console`` (``Live``, ``Progress``)."""
        if self._console is None:
            from rich.console import Console

            self._console = Console(**self._options)
        return self._console

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


# markup is off: user data (paths, templates like {root[work]}) must never be read as rich markup
console = LazyConsole(highlight=False, markup=False)
err_console = LazyConsole(stderr=True, highlight=False, markup=False)


def styled(text: str, style: str) -> Text:
    from rich.text import Text

    return Text(text, style=style)


def line(*parts: str | tuple[str, str]) -> Text:
    """A line from plain strings and (text, style) pairs."""
    from rich.text import Text

    return Text.assemble(*parts)


def failed_count(n: int) -> Text:
    from rich.text import Text

    return Text(str(n), style="bold red" if n else "")


STATUS_STYLE = {
    "present": "green",
    "queued": "yellow",
    "in_progress": "cyan",
    "failed": "bold red",
    "paused": "magenta",
    "removing": "dim red",
    "lost": "bold white on red",
    "missing": "bold white on red",
    "no_source": "bold yellow",
    "partial": "yellow",
    "none": "dim",
}


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")


def human_size(n: int | float | None) -> str:
    if n is None:
        return "-"
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"


def human_time(ts: float | None) -> str:
    if not ts:
        return "-"
    delta = time.time() - ts
    if delta < 0:
        return "in " + human_duration(-delta)
    if delta < 5:
        return "just now"
    if delta < 86400:
        return human_duration(delta) + " ago"
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(ts))


def human_duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{(seconds % 3600) // 60:02d}m"


def status_text(status: str, progress: float | None = None) -> Text:
    from rich.text import Text

    label = status.replace("_", " ")
    if status == "in_progress" and progress is not None:
        label += f" {progress * 100:.0f}%"
    return Text(label, style=STATUS_STYLE.get(status, ""))


def table(*columns: str, title: str | None = None) -> Table:
    from rich.table import Table

    t = Table(title=title, title_justify="left", header_style="bold", show_edge=False, pad_edge=False)
    for col in columns:
        justify: JustifyMethod = (
            "right" if col in ("id", "files", "size", "priority", "attempts", "count", "present") else "left"
        )
        wide = col in ("representation", "location", "error", "file", "roots", "notes", "path")
        t.add_column(col, justify=justify, overflow="fold", no_wrap=not wide)
    return t


def sync_progress_view(
    snapshot_fn: Callable[[], ProgressSnapshot], total_files: int, total_bytes: int
) -> Callable[[], Group]:
    """A rich renderable factory showing overall files/bytes and each running transfer."""
    from rich.console import Group
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TaskProgressColumn,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )
    from rich.text import Text

    overall = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(bar_width=40),
        TaskProgressColumn(),
        DownloadColumn(binary_units=True),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        expand=False,
    )
    task = overall.add_task("sync", total=max(total_bytes, 1))
    files_task_total = max(total_files, 0)

    def render() -> Group:
        snap = snapshot_fn()
        bytes_total = max(total_bytes, snap.bytes_claimed, snap.bytes_done, 1)
        files_total = max(files_task_total, snap.files_claimed)
        overall.update(task, total=bytes_total, completed=snap.bytes_done)
        lines = [
            Text(
                f"{snap.files_done}/{files_total} files verified"
                + (f", {snap.files_failed} failed attempts" if snap.files_failed else ""),
                style="bold",
            )
        ]
        for item in sorted(snap.in_flight, key=lambda x: x.started)[:8]:
            pct = item.done / item.size * 100 if item.size else 100.0
            lines.append(
                Text(
                    f"  {item.source} -> {item.site}  {pct:5.1f}%  {human_size(item.size):>10}  {item.path}",
                    style="dim",
                )
            )
        return Group(overall, *lines)

    return render


def progress_line(snap: ProgressSnapshot, total_files: int, total_bytes: int) -> str:
    """One line of progress for logs and pipes (where a redrawn bar would be noise)."""
    files_total = max(total_files, snap.files_claimed)
    bytes_total = max(total_bytes, snap.bytes_claimed, snap.bytes_done, 1)
    elapsed = max(time.time() - snap.started, 1e-6)
    pct = min(100.0, snap.bytes_done / bytes_total * 100)
    line = (
        f"sync {pct:5.1f}%  {snap.files_done}/{files_total} files  "
        f"{human_size(snap.bytes_done)} of {human_size(bytes_total)}  {human_size(snap.bytes_done / elapsed)}/s"
    )
    if snap.files_failed:
        line += f"  {snap.files_failed} failed attempts"
    return line


def print_bandwidth(data: dict[str, Any]) -> None:
    """This machine's bandwidth limits in force and current rates (``Client.bandwidth()``): one
    line per scope (the machine, each site with a limit or traffic), or one line saying none."""
    scopes = [("this machine", data["machine"]), *data["sites"].items()]

    def active(entry: dict[str, Any]) -> bool:
        return entry["schedule"] is not None or any(entry[d]["rate"] >= 1 for d in ("up", "down"))

    shown = [(name, entry) for name, entry in scopes if active(entry)]
    if not shown:
        console.print(line(("bandwidth: ", "bold"), "no limits, nothing moving"))
        return
    console.print(line(("bandwidth", "bold"), " (limit in force, now)"))
    for name, entry in shown:
        sides = ", ".join(f"{d} {entry[d]['limit_text']} ({entry[d]['rate_text']})" for d in ("up", "down"))
        schedule = ""
        if entry["schedule"] is not None:
            schedule = f"; {entry['schedule']}"
            if entry["changes_at"]:
                schedule += f", {entry['next']} from {entry['changes_at'].replace('T', ' ')}"
        console.print(line((f"  {name}: ", "bold"), sides + schedule), soft_wrap=True)
