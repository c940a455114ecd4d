"""The worker's per-loop steps (engine/steps.py) and the settings' rule hook (settings/hooks.py):
the engine and the settings import no workflow; the client wires the workflows in."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from sitesync.engine.steps import StepContext, StepOwner
from sitesync.errors import InvalidSettingError
from sitesync.settings import hooks
from sitesync.settings.models import ProjectSiteSettings
from sitesync.workflows.preferred import PreferredContent
from tests.conftest import Studio

SRC = Path(__file__).resolve().parent.parent / "src" / "sitesync"


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
            out |= {f"{node.module}.{alias.name}" for alias in node.names}
    return out


@pytest.mark.parametrize("package", ["engine", "settings"])
def test_the_core_imports_no_workflow(package: str) -> None:
    offenders = {
        f"{path.relative_to(SRC)}: {name}"
        for path in sorted((SRC / package).rglob("*.py"))
        for name in imported_modules(path)
        if name == "sitesync.workflows" or name.startswith("sitesync.workflows.")
    }
    assert not offenders, offenders
    assert len(list((SRC / package).rglob("*.py"))) > 3  # the walk found the package's modules


class Probe:
    """A step that records what the worker showed it."""

    def __init__(self, owner: StepOwner, seen: list[tuple[StepOwner, StepContext]]) -> None:
        self.owner = owner
        self.seen = seen

    def run(self, ctx: StepContext) -> bool:
        self.seen.append((self.owner, ctx))
        return False


class Broken:
    def run(self, ctx: StepContext) -> bool:
        raise RuntimeError("a step bug")


def test_registered_steps_run_every_turn_and_a_failing_one_does_not_stop_the_worker(studio: Studio) -> None:
    c = studio.client
    assert c.worker_steps.names() == ["preferred_content", "workfiles"]  # what the client wires up by default
    seen: list[tuple[StepOwner, StepContext]] = []
    c.worker_steps.register("broken", lambda owner: Broken())
    c.worker_steps.register("probe", lambda owner: Probe(owner, seen))
    rep = studio.publish([studio.write("a.bin", b"a")])
    c.download(rep)
    worker = c.worker(once=True, listen=False)
    assert list(worker.steps) == ["preferred_content", "workfiles", "broken", "probe"]
    assert isinstance(worker.steps["preferred_content"], PreferredContent)
    report = worker.run()
    assert report.transferred == 1  # the broken step neither stopped the worker nor the probe after it
    assert seen, "the probe step never ran"
    owner, ctx = seen[0]
    assert owner.worker_id == worker.worker_id and owner.once is True and owner.store is c.store
    assert "show" in ctx.views and ctx.project_ids["show"] == c.store.project("show").id
    assert ctx.machine.site_id == c.site_id

    c.worker_steps.unregister("broken")
    c.worker_steps.unregister("probe")
    assert list(c.worker(once=True, listen=False).steps) == ["preferred_content", "workfiles"]


def test_settings_check_rules_through_the_registered_hook(monkeypatch: pytest.MonkeyPatch) -> None:
    assert ProjectSiteSettings.model_validate({"wants": "latest and hero"}).wants == "latest and hero"
    with pytest.raises(ValueError, match="unknown word 'andd'"):
        ProjectSiteSettings.model_validate({"wants": "latest andd hero"})
    checked: list[str] = []
    monkeypatch.setattr(hooks, "_rule_check", checked.append)
    ProjectSiteSettings.model_validate({"wants": "anything goes here"})
    assert checked == ["anything goes here"]
    # without a registered check a rule is never accepted unchecked
    monkeypatch.setattr(hooks, "_rule_check", None)
    with pytest.raises(RuntimeError, match="no preferred-content rule check is registered"):
        ProjectSiteSettings.model_validate({"wants": "latest"})
    assert ProjectSiteSettings.model_validate({"wants": None}).wants is None


def test_a_bad_rule_is_still_a_one_line_settings_error(studio: Studio) -> None:
    with pytest.raises(InvalidSettingError, match=r"sites\.local\.wants: unknown word 'andd' at column 8"):
        studio.client.settings_set("sites.local.wants", "latest andd hero", project="show")
