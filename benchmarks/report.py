"""Markdown for the benchmark results, and updating the generated section of ``RESULTS.md``.

``RESULTS.md`` keeps hand-written text outside the markers; everything between
``<!-- BEGIN GENERATED -->`` and ``<!-- END GENERATED -->`` is replaced by each full run.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks.common import Stats
from benchmarks.transfer import SITESYNC, DataSetResult

BEGIN = "<!-- BEGIN GENERATED -->"
END = "<!-- END GENERATED -->"

TARGET_LARGE_VS_CP = 0.7
TARGET_SMALL_VS_RCLONE = 1.5
TARGET_CLAIM_MS = 50.0
TARGET_RSS_MB = 300.0


def _ratio_cell(result: DataSetResult, peer: str) -> str:
    s, p = result.stats(SITESYNC), result.stats(peer)
    paired = result.paired_ratios(peer)
    spread = f" ({min(paired):.2f}-{max(paired):.2f})" if len(paired) > 1 else ""
    return f"{p.median / s.median:.2f}x{spread}"


def transfer_tables(data: dict[str, Any]) -> list[str]:
    lines: list[str] = []
    for result in data["results"]:
        ds = result.dataset
        lines += [
            f"#### {ds.name}: {ds.describe()}",
            "",
            "| tool | median s | min s | max s | files/s | MB/s | CPU s | sitesync speed ÷ this tool's |",
            "|---|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for name in result.times:
            st = result.stats(name)
            files_s = ds.count / st.median if st.median else 0.0
            mb_s = ds.total_bytes / st.median / 1e6 if st.median else 0.0
            ratio = "-" if name == SITESYNC else _ratio_cell(result, name)
            cpu = statistics.median(result.cpu[name]) if result.cpu.get(name) else float("nan")
            lines.append(
                f"| {name} | {st.median:.3f} | {st.minimum:.3f} | {st.maximum:.3f} | {files_s:,.0f} | {mb_s:,.1f} "
                f"| {cpu:.2f} | {ratio} |"
            )
        for name, phases in result.phases.items():
            if not phases:
                continue
            pub = statistics.median(p["publish_seconds"] for p in phases)
            syn = statistics.median(p["sync_seconds"] for p in phases)
            wall = statistics.median(p["wall_seconds"] for p in phases)
            lines += [
                "",
                f"{name}'s time, medians: publish in place {pub:.3f} s + sync {syn:.3f} s + process start, "
                f"imports and shutdown {max(0.0, wall - pub - syn):.3f} s.",
            ]
        lines.append("")
    return lines


def _fmt_ms(v: float) -> str:
    return f"{v:.1f}" if v < 100 else f"{v:,.0f}"


def scale_tables(data: dict[str, Any]) -> list[str]:
    lines = []
    for db in data["databases"]:
        if db.get("skipped"):
            lines += [f"#### {db['name']}: skipped ({db['skipped']})", ""]
            continue
        lines += [
            f"#### {db['name']}: {db['replicas']:,} replicas, {db['files']:,} files, {db['representations']:,} "
            f"representations (generated in {db['generate_seconds']:.0f} s)",
            "",
        ]
        if db.get("upgrade_seconds") is not None:
            lines += [
                f"Upgrading this database from the baseline's schema to this code's took "
                f"{db['upgrade_seconds']:.0f} s (VACUUM ANALYZE included).",
                "",
            ]
        before = {o["name"]: Stats.of(o["ms"]) for o in db.get("operations_before", [])}
        if db.get("before_error"):
            lines += [f"(The baseline revision could not be measured here: {db['before_error']})", ""]
        if before:
            lines += [
                "| operation | runs | p50 ms | p95 ms | max ms | before: p50 ms | before: p95 ms |",
                "|---|---:|---:|---:|---:|---:|---:|",
            ]
        else:
            lines += ["| operation | runs | p50 ms | p95 ms | max ms |", "|---|---:|---:|---:|---:|"]
        for op in db["operations"]:
            st = Stats.of(op["ms"])
            row = f"| {op['name']} | {st.n} | {_fmt_ms(st.median)} | {_fmt_ms(st.p95)} | {_fmt_ms(st.maximum)} |"
            if before:
                old = before.get(op["name"])
                row += f" {_fmt_ms(old.median)} | {_fmt_ms(old.p95)} |" if old else " - | - |"
            lines.append(row)
        pub = db.get("publish")
        if pub:
            lines += [
                "",
                f"Publish throughput into this database (files registered in place, hashing included, "
                f"{pub['representations']} x `Client.publish` of {pub['files_per_representation']} files of "
                f"{pub['file_size']:,} bytes): **{pub['files_per_second']:,.0f} files/s** "
                f"({pub['seconds']:.2f} s for {pub['files']:,} files)"
                + (
                    f"; before: {db['publish_before']['files_per_second']:,.0f} files/s."
                    if db.get("publish_before")
                    else "."
                ),
            ]
        lines.append("")
    return lines


def memory_lines(data: dict[str, Any]) -> list[str]:
    return [
        f"`sitesync sync --once` transferring {data['files']:,} files of {data['file_size']:,} bytes "
        f"({data['representations']} representations) between two local_drive sites, SQLite state: "
        f"**peak RSS {data['peak_rss_mb']:.0f} MB**, {data['seconds']:.1f} s "
        f"({data['files'] / data['seconds']:,.0f} files/s). Publishing them in place first: peak RSS "
        f"{data['publish_peak_rss_mb']:.0f} MB, {data['publish_seconds']:.1f} s.",
        "",
    ]


def targets(data: dict[str, Any]) -> list[str]:
    rows = []
    transfer = data.get("transfer")
    if transfer:
        by_name = {r.dataset.name: r for r in transfer["results"]}
        if "large" in by_name:
            r = by_name["large"]
            if "cp+sync" in r.times:
                ratio = r.stats("cp+sync").median / r.stats(SITESYNC).median
                rows.append(
                    ("large files: sitesync ≥ 0.7 x `cp -r && sync` (verified, durable)", f"{ratio:.2f}x", ratio >= 0.7)
                )
            ratio = r.stats("cp").median / r.stats(SITESYNC).median
            rows.append(("large files: sitesync ≥ 0.7 x cp throughput (verified)", f"{ratio:.2f}x", ratio >= 0.7))
        if "small" in by_name:
            r = by_name["small"]
            ratio = r.stats("rclone").median / r.stats(SITESYNC).median
            rows.append(("small files: sitesync ≥ 1.5 x rclone files/s", f"{ratio:.2f}x", ratio >= 1.5))
    scale = data.get("scale")
    if scale:
        for db in scale["databases"]:
            op = next((o for o in db.get("operations", []) if o["name"].startswith("claim next 1,000")), None)
            if op:
                st = Stats.of(op["ms"])
                rows.append(
                    (
                        f"claim next 1,000 at {db['replicas']:,} replicas on {db['name']} < 50 ms",
                        f"p50 {st.median:.1f} ms, p95 {st.p95:.1f} ms",
                        st.p95 < TARGET_CLAIM_MS,
                    )
                )
    mem = data.get("memory")
    if mem:
        rows.append(
            (f"peak RSS < 300 MB at {mem['files']:,} files", f"{mem['peak_rss_mb']:.0f} MB", mem["peak_rss_mb"] < 300)
        )
    if not rows:
        return []
    lines = ["| target | measured | met |", "|---|---|---|"]
    lines += [f"| {name} | {value} | {'yes' if ok else '**no**'} |" for name, value, ok in rows]
    return [*lines, ""]


def render(data: dict[str, Any], command: str) -> str:
    machine = data["machine"]
    lines = [
        f"Generated by `{command}` on {data['date']} (took {data['seconds'] / 60:.1f} min).",
        "",
        "| machine | |",
        "|---|---|",
        *(f"| {k.replace('_', ' ')} | {v} |" for k, v in machine.items()),
        "",
    ]
    transfer = data.get("transfer")
    if transfer:
        lines += ["| tool | version |", "|---|---|", f"| sitesync | {data['sitesync_version']} ({data['revision']}) |"]
        if data.get("baseline"):
            lines.append(f"| sitesync-before | the code of {data['baseline']} |")
        lines += [f"| {k} | {v} |" for k, v in transfer["versions"].items()]
        lines += ["", "Commands timed (SRC: the data set, DST: an empty folder on the same file system):", ""]
        lines += [f"- {k}: `{v}`" for k, v in transfer["commands"].items()]
        lines.append("")
    lines += ["### Targets", "", *targets(data)]
    if transfer:
        lines += ["### Transfers", "", *transfer_tables(transfer)]
    if data.get("scale"):
        lines += ["### State store at scale", "", *scale_tables(data["scale"])]
    if data.get("memory"):
        lines += ["### Worker memory", "", *memory_lines(data["memory"])]
    return "\n".join(lines).rstrip() + "\n"


def update_results_file(path: Path, generated: str) -> None:
    text = path.read_text() if path.exists() else f"# Benchmark results\n\n{BEGIN}\n{END}\n"
    head, sep, rest = text.partition(BEGIN)
    if not sep:
        head, rest = text.rstrip() + "\n\n", f"\n{END}\n"
    _, sep, tail = rest.partition(END)
    if not sep:
        tail = "\n"
    path.write_text(f"{head}{BEGIN}\n{generated}{END}{tail}")


def fmt_list(values: Sequence[float]) -> str:
    return ", ".join(f"{v:.2f}" for v in values)
