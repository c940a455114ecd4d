"""Preferred content: the rule language (parse errors refused on write with one line), what rules
match, and the worker queuing wanted representations without ever deleting or rescanning."""

from __future__ import annotations

import json
import time
from types import SimpleNamespace

import pytest

from sitesync.errors import InvalidSettingError, NotFoundError
from sitesync.workflows import preferred
from sitesync.workflows.rules import RuleError, parse_rule
from tests.conftest import SITE_ID, Studio, keep_publishes_local
from tests.test_cli_errors import assert_refused
from tests.test_sync_flow import replica_states


def facts(folder="seq01/sh010", product="renderMain", name="exr", hero=False, latest=False, age=0.0):
    return SimpleNamespace(folder=folder, product=product, name=name, is_hero=hero, is_latest=latest, age=age)


@pytest.mark.parametrize(
    ("rule", "yes", "no"),
    [
        ("everything", facts(), None),
        ("nothing", None, facts()),
        ("latest and folder:*/sh010", facts(latest=True), facts(latest=True, folder="seq01/sh020")),
        ("folder:*/sh010", facts(folder="seq01/sh010/fx"), facts(folder="seq01/sh0100")),
        ("folder:**/sh010", facts(folder="a/b/c/sh010"), facts(folder="sh010x")),
        ("folder:seq01", facts(folder="seq01/sh010"), facts(folder="seq02/sh010")),
        ("hero", facts(hero=True), facts()),
        ("product:render* and age<7d", facts(age=86400), facts(age=8 * 86400)),
        ("age>1h", facts(age=7200), facts(age=60)),
        ("not hero and (name:exr or name:abc)", facts(name="abc"), facts(hero=True, name="abc")),
        ('folder:"my shot/*"', facts(folder="my shot/a"), facts(folder="my_shot/a")),
        ("name:[ej]pg", facts(name="jpg"), facts(name="png")),
        ("LATEST OR Hero", facts(latest=True), facts()),
    ],
)
def test_rules_match(rule: str, yes, no) -> None:
    node = parse_rule(rule)
    if yes is not None:
        assert node.matches(yes)
    if no is not None:
        assert not node.matches(no)


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ("", "the rule is empty"),
        ("lates", "unknown word 'lates' at column 1"),
        ("latest andd hero", "unknown word 'andd' at column 8"),
        ("latest hero", "expected 'and', 'or' or the end of the rule at column 8"),
        ("latest and", "the rule ends too early at column 11"),
        ("(latest or hero", "missing ')' for the '(' at column 1"),
        ("latest)", "unmatched ')' at column 7"),
        ("folder:", "folder: needs a pattern"),
        ('folder:"sh010', "missing closing '\"'"),
        ("size:big", "unknown field 'size'"),
        ("age<7y", "invalid duration '7y'"),
        ("or hero", "expected a term before 'or' at column 1"),
        ("latest & hero", "unexpected '&' at column 8"),
    ],
)
def test_rule_errors_name_the_problem(rule: str, message: str) -> None:
    with pytest.raises(RuleError) as info:
        parse_rule(rule)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_bad_rule_refused_on_write(cli_studio: Studio) -> None:
    with pytest.raises(InvalidSettingError, match=r"sites\.local\.wants: unknown word 'andd' at column 8"):
        cli_studio.client.settings_set("sites.local.wants", "latest andd hero", project="show")
    with pytest.raises(InvalidSettingError, match=r"local settings: default\.wants: the rule is empty"):
        cli_studio.client.settings_set("wants", " ", local=True)
    assert_refused(
        cli_studio,
        ["settings", "set", "--project", "show", "sites.studio.wants", "hero or"],
        "sites.studio.wants: the rule ends too early at column 8",
    )


@pytest.fixture
def cli_studio(sqlite_studio: Studio) -> Studio:
    return sqlite_studio


def _version(studio: Studio, folder: str, product: str, version, data: bytes) -> int:
    path = studio.studio_file(f"show/{folder}/{product}/{version}/f.bin", data)
    return studio.publish([path], site="studio", folder=folder, product=product, version=version, name="data")


def test_worker_fetches_what_the_local_rule_wants_and_never_deletes(studio: Studio) -> None:
    c = studio.client
    old = _version(studio, "seq01/sh010", "anim", 1, b"v1")
    new = _version(studio, "seq01/sh010", "anim", 2, b"v2")
    other_shot = _version(studio, "seq01/sh020", "anim", 1, b"x")
    hero = _version(studio, "seq01/sh010", "anim", "hero", b"h")
    c.settings_set("sites.local.wants", "latest and folder:*/sh010", project="show")
    preview = c.preferred_content("show", "local")
    assert preview["matched"] == 1 and [r["id"] for r in preview["representations"]] == [new]
    assert studio.sync().transferred == 1
    assert replica_states(studio, new)[SITE_ID] == ["present"]
    for rep in (old, other_shot, hero):
        assert SITE_ID not in replica_states(studio, rep)
    detail = c.status(representation=new)
    assert detail["sites"][SITE_ID]["priority"] == preferred.PREFERRED_PRIORITY
    # a newer version arrives: wanted too; the older one keeps its copy (rules never delete)
    newest = _version(studio, "seq01/sh010", "anim", 3, b"v3")
    assert studio.sync().transferred == 1
    assert replica_states(studio, newest)[SITE_ID] == ["present"]
    assert replica_states(studio, new)[SITE_ID] == ["present"]
    c.settings_set("sites.local.wants", "nothing", project="show")
    studio.sync()
    assert replica_states(studio, new)[SITE_ID] == ["present"]


def test_rule_sources_site_rules_local_override_and_disabled_sites(studio: Studio) -> None:
    c = studio.client
    c.add_site("backup", "local_drive", [f"work={studio.root / 'backup'}"], {"create_roots": True})
    c.settings_set("sites.backup.wants", "everything")  # default project: every project inherits it
    c.settings_set("sites.backup.enabled", False, project="show")
    c.settings_set("sites.local.wants", "hero", project="show")
    c.settings_set("wants", "product:plate*", project="show", local=True)  # this artist's own rule
    plate = _version(studio, "seq01/sh010", "plateMain", 1, b"p")
    hero = _version(studio, "seq01/sh010", "anim", "hero", b"h")
    assert c.preferred_content("show", "local")["rule"] == "product:plate*"
    studio.sync()
    assert replica_states(studio, plate)[SITE_ID] == ["present"]
    assert SITE_ID not in replica_states(studio, hero)
    assert "backup" not in replica_states(studio, plate), "a disabled site's rule does nothing"
    c.settings_set("sites.backup.enabled", True, project="show")
    assert studio.sync().transferred == 2
    assert replica_states(studio, hero)["backup"] == ["present"]
    with pytest.raises(NotFoundError, match="has no preferred-content rule"):
        c.preferred_content("show", "studio")


def test_rule_never_retries_failed_files(studio: Studio) -> None:
    c = studio.client
    c.settings_set("retry_count", 1, project="show")
    keep_publishes_local(studio)
    rep = studio.publish([studio.write("r.bin", b"right")], product="fxMain")
    in_the_way = studio.studio_root / "show/seq01/sh010/publish/fxMain/v001/data/r.bin"
    in_the_way.parent.mkdir(parents=True)
    in_the_way.write_bytes(b"wrong")  # a file sitesync never wrote: the copy fails
    c.settings_set("sites.studio.wants", "everything", project="show")
    studio.sync()
    assert replica_states(studio, rep)["studio"] == ["failed"]
    worker = c.worker(once=True, listen=False)
    step = worker.steps["preferred_content"]
    assert isinstance(step, preferred.PreferredContent)
    step._last_step = 0.0
    step._cursors.clear()
    report = worker.run()  # a fresh worker: full pass again
    assert report.failed_attempts == 0 and replica_states(studio, rep)["studio"] == ["failed"]


def test_incremental_evaluation_is_bounded_and_catches_late_commits(studio: Studio, monkeypatch) -> None:
    """The paced hook: a full pass one page per step, then only new ids, plus the recent window
    re-counted so a publish that committed after a higher id was read is not missed."""
    c = studio.client
    monkeypatch.setattr(preferred, "PAGE", 2)
    monkeypatch.setattr(preferred, "CHECK_SECONDS", 0.0)
    monkeypatch.setattr(preferred, "STEP_BUDGET_SECONDS", 0.0)  # one page per step
    reps = [_version(studio, "lib", f"asset{i}", 1, bytes([i])) for i in range(5)]
    c.settings_set("sites.local.wants", "everything", project="show")
    hook = preferred.PreferredContent(c.store, "test", paced=True)
    machine = c.view()
    views = {"show": machine.project("show")}
    ids = {"show": c.store.project("show").id}

    def wanted() -> set[int]:
        return c.store.wanted_on_site(reps + extra, SITE_ID)

    extra: list[int] = []
    counts = []
    for _ in range(4):
        hook._last_step = 0.0
        hook.step(machine, views, ids)
        counts.append(len(wanted()))
    assert counts == [2, 4, 5, 5], "one page per step, then done"
    cursor = hook._cursors[("show", SITE_ID)]
    assert cursor.full_after is None
    extra.append(_version(studio, "lib", "late", 1, b"L"))
    extra.append(_version(studio, "lib", "later", 1, b"M"))
    # pretend the first of the two committed late: the cursor read the second one already
    cursor.high = extra[1]
    cursor.recent = {extra[1]: time.time()}
    cursor.low = extra[0] - 1
    hook._last_step = 0.0
    hook.step(machine, views, ids)
    assert extra[0] in wanted(), "the late commit was found by the window count"
    # once the window has settled the low-water mark moves up and nothing is re-read
    cursor.recent = {i: time.time() - 2 * preferred.RECENT_SECONDS for i in cursor.recent}
    hook._last_step = 0.0
    hook.step(machine, views, ids)
    assert cursor.low == cursor.high and cursor.recent == {}


def test_a_step_keeps_paging_within_its_time_budget(studio: Studio, monkeypatch) -> None:
    """With time left in the step's budget a full pass goes on page after page (a rule change on a
    big project is matched in minutes, not in one page every few seconds)."""
    c = studio.client
    monkeypatch.setattr(preferred, "PAGE", 2)
    # a budget no loaded machine runs out of: this is about going on while time is left
    monkeypatch.setattr(preferred, "STEP_BUDGET_SECONDS", 60.0)
    reps = [_version(studio, "lib", f"asset{i}", 1, bytes([i])) for i in range(7)]
    c.settings_set("sites.local.wants", "everything", project="show")
    hook = preferred.PreferredContent(c.store, "test", paced=True)
    machine = c.view()
    hook.step(machine, {"show": machine.project("show")}, {"show": c.store.project("show").id})
    assert c.store.wanted_on_site(reps, SITE_ID) == set(reps), "the whole pass in one step"
    assert hook._cursors[("show", SITE_ID)].full_after is None


def test_rule_cli_preview_and_apply(cli_studio: Studio) -> None:
    studio = cli_studio
    rep = _version(studio, "seq01/sh010", "renderMain", 4, b"r")
    studio.client.settings_set("sites.local.wants", "product:render*", project="show")
    proc = studio.cli("wants", "show", "--site", "local", "--json", check=True)
    data = json.loads(proc.stdout)
    assert data["matched"] == 1 and data["not_wanted_yet"] == 1 and data["requested"] == 0
    proc = studio.cli("wants", "show", "--site", "local", "--apply", check=True)
    assert "requested 1" in proc.stdout
    assert replica_states(studio, rep)[SITE_ID] == ["queued"]
    assert_refused(studio, ["wants", "show", "--site", "studio"], "site 'studio' has no preferred-content rule")
