"""Settings: read (secrets masked) and validated writes of one key."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from sitesync.api.app import ApiContext
from sitesync.api.models import SettingWrite
from sitesync.api.overview_models import SettingsFormOut
from sitesync.api.routes.common import AUTH, context, errors

router = APIRouter(tags=["settings"], dependencies=AUTH)

NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"


@router.get("/settings", response_model=dict[str, Any], responses=errors(404))
def read_settings(
    ctx: ApiContext = Depends(context),
    project: Annotated[str | None, Query(pattern=NAME)] = None,
    effective: Annotated[bool, Query(description="The merged result of every layer on this machine.")] = False,
) -> dict[str, Any]:
    """The stored settings documents (system, default project, local), a project's stored
    document, or the effective settings. Secrets are masked."""
    return ctx.client.settings_show(project, effective=effective)


@router.get("/settings/form", response_model=SettingsFormOut, responses=errors(404))
def settings_form(
    ctx: ApiContext = Depends(context),
    project: Annotated[str | None, Query(pattern=NAME, description="Default: the default project.")] = None,
) -> dict[str, Any]:
    """The settings as form fields: type, bounds, description, the effective value, every layer
    that sets it and which one wins, and the ``PUT /settings`` body that writes each layer.
    Secrets are write-only: their values are never returned."""
    return ctx.client.settings_form(project)


@router.put("/settings", response_model=dict[str, Any], responses=errors(400, 404, 415))
def write_setting(body: SettingWrite, ctx: ApiContext = Depends(context)) -> dict[str, Any]:
    """Set one key (validated: an invalid value is refused with 422, the key named, and nothing
    changes). Answers with the settings of that layer, secrets masked; the value is not echoed.
    Options that name a program, a credentials file or a secret of a machine (``env:``, ``file:``,
    ``keyring:``) are refused with 403 in every layer: they are set on the machine itself
    (``sitesync settings set --local``)."""
    # a JSON string is meant literally: quote it so the command-line parsing keeps it as it is
    value = json.dumps(body.value) if isinstance(body.value, str) else body.value
    result = ctx.client.settings_set(body.key, value, project=body.project, local=body.local, via_api=True)
    if body.local:
        shown = ctx.client.settings_show()["local"]
    elif result["scope"] == "system":
        shown = ctx.client.settings_show()["system"]
    else:
        shown = (
            ctx.client.settings_show(body.project) if body.project else ctx.client.settings_show()["default_project"]
        )
    ctx.woke()
    return {"scope": result["scope"], "key": body.key, "settings": shown}
