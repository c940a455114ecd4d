"""``sitesync site test NAME``: the provider contract suite against a user's real, configured site.

The site is resolved as this machine sees it for one project (its provider, options and root
locations), a fresh provider instance runs every check of ``sitesync.providers.conformance`` in a
scratch folder below one root's location, and everything it wrote is removed afterwards. The
result lists each check with its outcome and the provider's capabilities.
"""

from __future__ import annotations

from typing import Any

from sitesync.errors import InvalidInputError, InvalidSettingError
from sitesync.machine_view import ProjectView, mask_secrets, open_provider
from sitesync.providers.conformance import CHECKS, run_conformance
from sitesync.providers.registry import provider_class


def run_site_test(
    project: ProjectView, site: str, *, root: str | None = None, only: list[str] | None = None
) -> dict[str, Any]:
    spec = project.site(site)
    if not spec.roots:
        raise InvalidInputError(
            f"site {site!r} has no root location in project {project.name!r}; "
            f"add one (`sitesync site add ... --root work=PATH`) or pass --project"
        )
    if root is None:
        root = next(iter(spec.roots))
    elif root not in spec.roots:
        raise InvalidInputError(
            f"site {site!r} has no root {root!r} in project {project.name!r}; use one of: {', '.join(spec.roots)}"
        )
    unknown = [name for name in only or () if name not in CHECKS]
    if unknown:
        raise InvalidInputError(f"unknown check {unknown[0]!r}; use one of: {', '.join(CHECKS)}")
    if spec.refused is not None:
        raise InvalidSettingError(spec.refused)
    cls = provider_class(spec.provider)
    provider = open_provider(spec)
    try:
        results = run_conformance(provider, spec.roots[root], only or None)
    finally:
        provider.close()
    checks = [
        {"name": r.name, "ok": r.ok, "skipped": r.skipped, "seconds": round(r.seconds, 3), "detail": r.detail}
        for r in results
    ]
    failed = sum(1 for r in results if not r.ok)
    return {
        "site": spec.name,
        "provider": spec.provider,
        "description": cls.description,
        "project": project.name,
        "root": root,
        "location": spec.roots[root],
        "options": mask_secrets(spec.provider, spec.options),
        "capabilities": sorted(provider.capabilities),
        "checks": checks,
        "passed": sum(1 for r in results if r.ok and not r.skipped),
        "skipped": sum(1 for r in results if r.skipped),
        "failed": failed,
        "ok": failed == 0,
        "seconds": round(sum(r.seconds for r in results), 3),
    }
