"""Documentation cannot fall behind the code: every command, option, setting and provider option
has a description, the generated reference (docs/reference.md) is current, and every REST route is
in docs/api.md."""

from __future__ import annotations

import re
from pathlib import Path

from sitesync.cli.reference import SETTINGS_TABLES, provider_section, render, root_options, walk_commands
from sitesync.providers.registry import installed_provider_names, provider_class

DOCS = Path(__file__).resolve().parents[1] / "docs"


def test_reference_is_current() -> None:
    committed = (DOCS / "reference.md").read_text(encoding="utf-8")
    assert committed == render(), (
        "docs/reference.md is stale: run `.venv/bin/python -m sitesync.cli.reference > docs/reference.md`"
    )


def test_a_providers_section_can_be_printed_alone() -> None:
    """``python -m sitesync.cli.reference --provider NAME``: for a provider another package installs."""
    section = "\n".join(provider_section("local_drive"))
    assert section.startswith("### `local_drive`") and "| `disable_capabilities` |" in section
    assert section in render()


def test_every_command_and_option_has_a_description() -> None:
    missing = [f"--{p.name} (every command)" for p in root_options() if not p.help]
    commands = list(walk_commands())
    assert len(commands) > 25, "the walk found too few commands"
    for path, command in commands:
        name = " ".join(path)
        if not (command.help or "").strip():
            missing.append(f"sitesync {name}")
        for param in command.params:
            if param.param_type_name == "option" and not param.hidden and not (param.help or "").strip():
                missing.append(f"sitesync {name} {param.opts[0]}")
    assert not missing, f"no help text: {missing}"


def test_every_setting_and_provider_option_has_a_description() -> None:
    missing = []
    for _title, _how, model, prefix in SETTINGS_TABLES:
        missing += [f"setting {prefix}{f}" for f, info in model.model_fields.items() if not info.description]
    names = installed_provider_names()
    assert {"local_drive", "s3", "sftp", "gdrive", "rclone", "dropbox"} <= set(names)
    for name in names:
        config = provider_class(name).Config
        missing += [f"{name} option {f}" for f, info in config.model_fields.items() if not info.description]
    assert not missing, f"no description (give the field a docstring): {missing}"


def test_every_api_route_is_documented(tmp_path: Path, home: Path) -> None:
    from sitesync import Client
    from sitesync.api.app import create_app

    client = Client(db=f"sqlite:///{tmp_path / 'state.db'}")
    client.init()
    try:
        spec = create_app(client).openapi()
    finally:
        client.close()
    text = (DOCS / "api.md").read_text(encoding="utf-8")

    def normal(path: str) -> str:
        return re.sub(r"\{[^}]*\}", "{}", path)

    documented = {(m.upper(), normal(p)) for m, p in re.findall(r"`(GET|POST|PUT|PATCH|DELETE) (/[^`\s]*)`", text)}
    routes = [
        (method.upper(), normal(path.removeprefix("/api/v1"))) for path, ops in spec["paths"].items() for method in ops
    ]
    assert len(routes) > 20
    missing = [f"{m} {p}" for m, p in routes if (m, p) not in documented]
    assert not missing, f"routes missing from docs/api.md: {missing}"
