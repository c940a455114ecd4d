"""Client: taking over a studio's OpenPype or AYON Site Sync — settings, and the record of which
file is on which site. The logic lives in ``sitesync.migration``; docs/migration.md explains it."""

from __future__ import annotations

import json
import shlex
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from pydantic import ValidationError

from sitesync.errors import InvalidInputError, InvalidSettingError
from sitesync.facade.settings import SettingsFacade
from sitesync.settings.machine import save_local_settings
from sitesync.settings.models import LocalSettings
from sitesync.settings.validation import deep_merge, describe_validation_error
from sitesync.workflows.checks_common import ProgressFn

# sitesync.migration is imported by the methods: every other command starts without it

SOURCES = {"openpype": "OpenPype", "ayon": "AYON"}


def parse_site_map(items: Sequence[str] | Mapping[str, str] | None) -> dict[str, str]:
    if items is None:
        return {}
    if isinstance(items, Mapping):
        return dict(items)
    out = {}
    for item in items:
        old, sep, new = item.partition("=")
        if not sep or not old or not new:
            raise InvalidInputError(
                f"invalid --site-map {item!r}: use OLD=NEW, e.g. clever-orange-dolphin=ws-anna-1a2b3c"
            )
        out[old] = new
    return out


class MigrationFacade(SettingsFacade):
    def import_openpype_settings(
        self, text: str, *, project: str | None = None, dry_run: bool = False, apply_local: bool = False
    ) -> dict[str, Any]:
        """Map OpenPype's exported Site Sync settings to sitesync's (see ``migration.openpype_settings``)
        and, unless ``dry_run``, write them over the stored settings, all or nothing. Local
        settings are this machine's only with ``apply_local``; otherwise the report gives the
        commands to run on the machine they belong to. Returns every mapped and unmapped key."""
        from sitesync.migration.openpype_settings import map_settings

        try:
            doc = json.loads(text)
        except ValueError as exc:
            raise InvalidInputError(f"the settings export is not valid JSON ({exc}); nothing was imported") from None
        if not isinstance(doc, dict):
            raise InvalidInputError("the settings export must be one JSON object; see docs/migration.md")
        mapping = map_settings(doc, project=project)
        if not (mapping.mapped or mapping.unmapped):
            raise InvalidInputError(
                "no Site Sync settings found (expected system_settings.modules.sync_server, project_settings "
                "or local_settings); see docs/migration.md"
            )
        docs = self.documents()
        existing = {p.name for p in self.store.projects()}
        projects = {}
        for name, mapped in mapping.projects.items():
            if name not in existing and not mapped.get("roots"):
                mapping.skip(
                    f"project_settings.{name}",
                    f"project {name} is not in sitesync and the export has no anatomy roots for it: create it "
                    f"(`sitesync project create {name} --root work=PATH`) and import again",
                )
                continue
            projects[name] = deep_merge(docs.projects.get(name, {}), mapped)
        data = {
            "system": deep_merge(docs.system, mapping.system),
            "default_project": deep_merge(docs.default_project, mapping.default_project),
            "projects": projects,
        }
        result: dict[str, Any] = {
            "dry_run": dry_run,
            "mapped": mapping.mapped,
            "unmapped": mapping.unmapped,
            "notes": mapping.notes,
        }
        try:
            written = self.settings_import_data(
                data, dry_run=dry_run, overlay={s: v["options"] for s, v in mapping.local.get("sites", {}).items()}
            )
        except InvalidSettingError as exc:
            if not dry_run:
                raise InvalidSettingError(
                    f"{exc}; nothing was imported (`--dry-run` shows the whole mapping)"
                ) from None
            result.update(valid=False, error=str(exc))
        else:
            result.update(valid=True, **written)
        result["local"] = self._import_local(mapping.local, apply_local and not dry_run)
        return result

    def _import_local(self, mapped: dict[str, Any], apply: bool) -> dict[str, Any]:
        if not mapped:
            return {"applied": False, "commands": []}
        commands = []
        if mapped.get("local_root"):
            commands.append(f"sitesync settings set --local local_root {shlex.quote(mapped['local_root'])}")
        for scope, section in [("default", mapped.get("default", {})), *mapped.get("projects", {}).items()]:
            flag = "" if scope == "default" else f" --project {scope}"
            for key in ("active_site", "remote_site"):
                if section.get(key):
                    commands.append(f"sitesync settings set --local{flag} {key} {shlex.quote(section[key])}")
            for site, roots in section.get("roots", {}).items():
                for root, path in roots.items():
                    commands.append(f"sitesync settings set --local{flag} roots.{site}.{root} {shlex.quote(path)}")
        for site, part in mapped.get("sites", {}).items():
            for key, value in part.get("options", {}).items():
                shown = value if isinstance(value, str) else json.dumps(value)
                commands.append(f"sitesync settings set --local sites.{site}.options.{key} {shlex.quote(shown)}")
        if not apply:
            return {"applied": False, "commands": commands}
        current = self.local_settings().model_dump(mode="json", exclude_none=True)
        try:
            settings = LocalSettings.model_validate(deep_merge(current, mapped))
        except ValidationError as exc:
            raise InvalidSettingError(f"local settings: {describe_validation_error(exc)}") from None
        save_local_settings(self.paths, settings)
        return {"applied": True, "file": str(self.paths.local_settings_file), "commands": commands}

    def import_representations(
        self,
        source: str,
        text: str | Iterable[str],
        project: str,
        *,
        dry_run: bool = False,
        hash_from: Sequence[str] | None = None,
        site_map: Sequence[str] | Mapping[str, str] | None = None,
        jobs: int = 4,
        progress: ProgressFn | None = None,
    ) -> dict[str, Any]:
        """Register the representations of an OpenPype export (``source="openpype"``: JSON lines)
        or an AYON Site Sync export (``"ayon"``: one JSON document) in ``project``: present where
        the other system recorded a copy, queued (or failed, with attempts and error) where it
        wanted one, with priorities and pauses. Each new file is hashed where a copy can be read
        (``hash_from``, else the studio and the mounted sites); ``dry_run`` only checks that a copy
        is there. Idempotent: a second run adds nothing. Returns counts and everything left out."""
        from sitesync.migration import ayon_sitesync, openpype_representations
        from sitesync.migration.importer import Options, RepresentationImporter
        from sitesync.migration.records import Report

        if source not in SOURCES:
            raise InvalidInputError(f"unknown source {source!r}: use {' or '.join(SOURCES)}")
        if not isinstance(jobs, int) or not 1 <= jobs <= 64:
            raise InvalidInputError(f"invalid jobs {jobs!r}: use a whole number from 1 to 64")
        prow = self.store.project(project)
        view = self.project_view(project)
        mapping = parse_site_map(site_map)
        for name in hash_from or ():
            site = self.view().normalize_site(name)
            if site not in view.sites:
                raise InvalidInputError(
                    f"--hash-from: unknown site {name!r} in project {project}; see `sitesync site list`"
                )
        hash_sites = [self.view().normalize_site(n) for n in hash_from] if hash_from else None
        report = Report()
        retry_count = view.settings.retry_count
        if source == "openpype":
            lines = text.splitlines() if isinstance(text, str) else text
            reps: Iterable[Any] = openpype_representations.read_lines(lines, report, retry_count)
        else:
            body = text if isinstance(text, str) else "".join(text)
            try:
                reps = ayon_sitesync.read_document(body, report, retry_count)
            except ValueError as exc:
                raise InvalidInputError(str(exc)) from None
        importer = RepresentationImporter(
            self.store,
            view,
            prow.id,
            self._pool,
            self.actor,
            SOURCES[source],
            Options(dry_run=dry_run, hash_from=hash_sites, site_map=mapping, jobs=jobs),
            progress,
        )
        counts = importer.run(reps, report)
        if not dry_run and (counts["representations"]["created"] or counts["representations"]["merged"]):
            self.wake()
        return {
            "source": source,
            "project": project,
            "dry_run": dry_run,
            **counts,
            "problems": report.problems,
            "unmapped": report.unmapped_list(),
            "notes": report.notes,
        }


__all__ = ["MigrationFacade", "parse_site_map"]
