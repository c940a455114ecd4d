"""The guarded removal of a site's copies: one owner for the whole of it (the facade's ``remove``,
``clear`` and the worker finishing removals whose remover stopped all come here).

1. **The storage is the site's.** The site must be reachable from here and its roots proven to be
   its own storage right now (``identity.storage``: its marker; an unmounted share or another
   site's storage under this name is refused).
2. **The guard, in the catalog.** ``begin_remove`` refuses if a file would keep fewer than
   ``min_copies`` verified copies on other storages, and marks the copies ``removing`` under a
   lease in the same transaction: no other removal can count them any more.
3. **The drop proof, at the storage.** Like git-annex's drop, the other copies are checked where
   they are, now: each holder on a site this machine can reach is looked at (size, and the storage
   fingerprint of the copy verified there); a copy found missing or changed is recorded so at once
   (the location log corrected) and does not count; a copy on a site this machine cannot reach
   (another workstation, a site switched off) cannot be proven and does not count either. Too few
   proven copies: nothing is deleted, the copies are verified copies again, the removal is refused.
4. **Each copy checked at the moment of deleting.** The record must still be this removal's (a
   publish in place takes it back), and the file must still be the content the removal was asked
   for (``identity.content``: its fingerprint, else its hash). A file that is gone is recorded gone;
   a different file in its place is left alone (and the record dropped: the copy it stood for is
   gone); only the expected content is deleted.
5. **The outcome is recorded whatever happens.** Copies deleted (or found gone) are dropped from
   the catalog, the rest become verified copies again; Ctrl-C stops between two files, records
   exactly that and says so (``RemovalInterrupted``); a crash leaves ``removing`` records that a
   worker later finishes through these same steps.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field

from sitesync.errors import (
    GuardRefusedError,
    InvalidInputError,
    RemovalInterrupted,
    SitesyncError,
    StorageError,
)
from sitesync.identity.content import Expected, Seen, Verdict, check_content
from sitesync.identity.storage import usable_site
from sitesync.machine_view import ProjectView, ProviderPool, SiteSpec
from sitesync.paths import shown_path
from sitesync.providers.base import Provider
from sitesync.state.base import chunked
from sitesync.state.physical import Holder
from sitesync.state.records import RemovalItem, RemovalTicket
from sitesync.state.schema import PRESENT, REMOVING
from sitesync.state.store import StateStore

log = logging.getLogger("sitesync.removal")

CHUNK = 100  # copies whose records are re-checked together just before they are deleted
LEASE_SECONDS = 600.0
PROOF_SECONDS = 10.0  # a site's storage proven this recently is not read again by the same removal run


@dataclass(frozen=True)
class RemoveResult:
    site: str
    deleted: int
    dropped_requests: int
    already_gone: int = 0  # recorded copies found missing: their records dropped
    left_alone: int = 0  # a different file was in place of the copy: not deleted, record dropped


@dataclass
class Removal:
    """What a removal runs with: the catalog, the project as this machine sees it, providers, who
    asks (``actor``), the lease owner, and which sites are one storage (``same_storage``)."""

    store: StateStore
    view: ProjectView
    pool: ProviderPool
    actor: str
    owner: str
    same_storage: Mapping[str, Collection[str]] = field(default_factory=dict)
    project_id: int | None = None
    _proven: dict[str, float] = field(default_factory=dict, repr=False)  # site -> when its storage was proven

    # ------------------------------------------------------------------ entry points

    def remove(self, rep_id: int, site: str, *, file_ids: Sequence[int] | None = None) -> RemoveResult:
        """Delete the site's copies of a representation (or of some of its files), guarded."""
        spec = self.view.site(site)
        if not spec.reachable:
            raise InvalidInputError(f"site {site!r} is not reachable from this machine; run the removal there")
        provider = self.pool.get(spec)
        self._prove_storage(spec, provider)
        # the drop proof before anything changes: a refusal leaves the catalog as it was
        self._prove(site, rep_id, self._held_files(rep_id, site, file_ids))
        ticket = self.store.begin_remove(
            rep_id,
            site,
            self.view.settings.min_copies,
            self.owner,
            self.actor,
            LEASE_SECONDS,
            file_ids=file_ids,
            same_storage=self.same_storage,
        )
        return self.carry_out(ticket, spec, provider, proven=True)

    def _held_files(self, rep_id: int, site: str, file_ids: Sequence[int] | None) -> dict[int, str]:
        """The representation's files with a copy on ``site`` (those a removal would delete)."""
        wanted = set(file_ids) if file_ids is not None else None
        files = {f.id: f.path for f in self.store.files_of(rep_id) if wanted is None or f.id in wanted}
        replicas = self.store.replicas_for_files(list(files))
        return {
            fid: path
            for fid, path in files.items()
            if any(r.site == site and r.status in (PRESENT, REMOVING) for r in replicas.get(fid, ()))
        }

    def _prove_storage(self, spec: SiteSpec, provider: Provider) -> None:
        """Step 1 (a removal of many representations, ``clear``, proves it again after a while)."""
        proven = self._proven.get(spec.name)
        if proven is not None and time.monotonic() - proven < PROOF_SECONDS:
            return
        try:
            usable_site(self.store, spec, provider, self.actor, self.project_id)
        except StorageError as exc:
            raise InvalidInputError(f"cannot remove from site {spec.name!r}: {exc}; nothing was removed") from None
        self._proven[spec.name] = time.monotonic()

    def carry_out(
        self, ticket: RemovalTicket, spec: SiteSpec, provider: Provider, *, proven: bool = False
    ) -> RemoveResult:
        """Steps 3 to 5 for a ticket whose copies this owner holds as ``removing`` (``proven``: the
        drop proof was made just before the ticket was taken)."""
        items = list(ticket.replicas)
        if not items:
            return RemoveResult(ticket.site, 0, ticket.dropped_wanted)
        if not proven:
            try:
                self._prove(ticket.site, ticket.representation_id, {i.file_id: i.path for i in items})
            except GuardRefusedError:
                self.store.abort_remove([i.replica_id for i in items], self.owner, "the drop proof failed")
                raise
        outcome = _Outcome()
        try:
            self._delete_each(ticket, spec, provider, items, outcome)
        except KeyboardInterrupt:
            outcome.interrupted = True
        finally:
            self._record(ticket, items, outcome)
        done = len(outcome.deleted) + len(outcome.gone) + len(outcome.replaced)
        if outcome.interrupted:
            raise RemovalInterrupted(
                f"interrupted: {done} of {len(items)} copies of representation {ticket.representation_id} on site "
                f"{ticket.site} were deleted (or found gone) and are recorded so; the other {len(items) - done} were "
                "not touched and stay registered as verified copies"
            )
        if outcome.kept:
            raise StorageError(
                f"could not delete {len(outcome.kept)} of {len(items)} files from site {ticket.site!r} "
                f"({outcome.first_error}); those copies stay registered, the rest were removed",
                site=ticket.site,
            )
        return RemoveResult(
            ticket.site, len(outcome.deleted), ticket.dropped_wanted, len(outcome.gone), len(outcome.replaced)
        )

    # ------------------------------------------------------------------ the drop proof

    def _prove(self, site: str, rep_id: int, path_of: dict[int, str]) -> None:
        """Step 3: enough other copies, verified at their storage now, for every file (file id ->
        catalog path) whose copy on ``site`` is to be deleted. Raises ``GuardRefusedError``."""
        min_copies = self.view.settings.min_copies
        if min_copies <= 0 or not path_of:
            return
        alts = self.same_storage
        group = {site, *alts.get(site, ())}
        holders = self.store.holders(list(path_of), exclude_sites=group)
        proven: dict[int, set[str]] = {}
        unproven: dict[str, str] = {}  # site -> why its copies could not be checked
        by_site: dict[str, list[Holder]] = {}
        for found in holders.values():
            for holder in found:
                by_site.setdefault(holder.site, []).append(holder)
        for holder_site, site_holders in sorted(by_site.items()):
            why = self._prove_site(holder_site, site_holders, path_of, proven)
            if why:
                unproven[holder_site] = why
        short = [fid for fid in path_of if len(proven.get(fid, ())) < min_copies]
        if not short:
            return
        example = short[0]
        detail = "; ".join(f"{name}: {why}" for name, why in sorted(unproven.items()))
        raise GuardRefusedError(
            f"refused: removing the copy of representation {rep_id} on site {site} would leave {len(short)} of "
            f"{len(path_of)} files with fewer than min_copies={min_copies} verified copies elsewhere, checked at "
            f"their storage now (e.g. {shown_path(path_of[example])} has {len(proven.get(example, ()))})"
            + (f"; not counted: {detail}" if detail else "")
            + "; upload them to another site first"
        )

    def _prove_site(
        self, site: str, holders: list[Holder], path_of: dict[int, str], proven: dict[int, set[str]]
    ) -> str | None:
        """Check one holder site's copies; returns why they could not be checked (none counted)."""
        spec = self.view.sites.get(site)
        if spec is None or not spec.reachable or not spec.enabled:
            return "a site this machine cannot reach (its copies cannot be proven from here)"
        storage = min({site, *self.same_storage.get(site, ())})  # one storage reached several ways is one copy
        try:
            provider = self.pool.get(spec)
            usable_site(self.store, spec, provider, self.actor, self.project_id)
        except SitesyncError as exc:
            return f"cannot be checked now ({exc})"
        lost: list[tuple[int, float | None, str]] = []
        observed: dict[int, tuple[int, float | None, str | None]] = {}
        for holder in holders:
            expected = _expected_of(holder, path_of)
            if expected is None:
                continue
            try:
                found = check_content(
                    provider,
                    spec.resolve(path_of[holder.file_id]),
                    expected,
                    Seen(holder.seen_size, holder.seen_hash, holder.seen_mtime, holder.provider_ref),
                    deep=False,
                )
            except SitesyncError as exc:
                log.info("could not check the copy of file %d on %s: %s", holder.file_id, site, exc)
                continue
            if found.verdict in (Verdict.SAME, Verdict.UNPROVEN):
                proven.setdefault(holder.file_id, set()).add(storage)
            else:
                if found.entry is not None:
                    observed[holder.file_id] = (found.entry.size, found.entry.mtime, found.entry.ref)
                lost.append(
                    (
                        holder.file_id,
                        None,
                        f"the copy on {site} is {found.verdict.value} (found by a removal's drop proof: {found.detail})",
                    )
                )
        if lost:
            # the location log corrected: these copies are no longer counted anywhere
            self.store.lose_copies(
                site,
                self.view.sites[site].alternatives,
                lost,
                self.actor,
                "copy_missing",
                check_since=False,
                observed=observed,
            )
        return None

    # ------------------------------------------------------------------ deleting

    def _delete_each(
        self, ticket: RemovalTicket, spec: SiteSpec, provider: Provider, items: list[RemovalItem], outcome: _Outcome
    ) -> None:
        """Step 4, chunk by chunk: re-check the records, then each file, then delete it."""
        renewed = time.monotonic()
        for chunk in chunked(items, CHUNK):
            if time.monotonic() - renewed > LEASE_SECONDS / 3:
                self.store.renew_removal([i.replica_id for i in items], self.owner, LEASE_SECONDS)
                renewed = time.monotonic()
            owned = self.store.removal_owned([i.replica_id for i in chunk], self.owner)
            for item in chunk:
                outcome.seen.add(item.replica_id)
                if item.replica_id not in owned:
                    outcome.taken_back.append(item)  # a publish in place (or another remover) has it now
                    continue
                self._delete_one(spec, provider, item, outcome)

    @staticmethod
    def _delete_one(spec: SiteSpec, provider: Provider, item: RemovalItem, outcome: _Outcome) -> None:
        location = spec.resolve(item.path)
        expected = Expected(item.size, item.hash_algo, item.hash)
        seen = Seen(item.size, expected.tagged, item.seen_mtime, item.provider_ref)
        try:
            found = check_content(provider, location, expected, seen)
            if found.verdict is Verdict.MISSING:
                outcome.gone.append(item)
            elif found.verdict is Verdict.DIFFERENT:
                log.warning(
                    "not deleting %s on %s: it is not the copy to remove (%s)", location, spec.name, found.detail
                )
                outcome.replaced.append(item)
            else:
                provider.delete(location)
                outcome.deleted.append(item)
        except Exception as exc:  # a provider bug must not lose the record of what was done
            outcome.first_error = outcome.first_error or (
                str(exc) if isinstance(exc, SitesyncError) else f"{type(exc).__name__}: {exc}"
            )
            try:
                still_there = provider.stat(location) is not None
            except Exception:
                still_there = True
            (outcome.kept if still_there else outcome.gone).append(item)

    def _record(self, ticket: RemovalTicket, items: list[RemovalItem], outcome: _Outcome) -> None:
        """Step 5: what is gone is dropped from the catalog, everything else is a verified copy again."""
        gone = [*outcome.deleted, *outcome.gone, *outcome.replaced]
        alternatives = self.view.sites[ticket.site].alternatives if ticket.site in self.view.sites else ()
        if gone:
            parts = [f"{len(outcome.deleted)} copies deleted from {ticket.site}"]
            if outcome.gone:
                parts.append(f"{len(outcome.gone)} were already gone")
            if outcome.replaced:
                parts.append(
                    f"{len(outcome.replaced)} had a different file in their place, left alone "
                    f"(e.g. {outcome.replaced[0].path})"
                )
            self.store.finish_remove(
                [i.replica_id for i in gone],
                ticket.representation_id,
                ticket.site,
                self.actor,
                alternatives,
                owner=self.owner,
                message="; ".join(parts),
            )
        handled = {i.replica_id for i in gone} | {i.replica_id for i in outcome.taken_back}
        back = [i.replica_id for i in items if i.replica_id not in handled]
        if back:
            self.store.abort_remove(back, self.owner, "the removal stopped before these copies")


@dataclass
class _Outcome:
    deleted: list[RemovalItem] = field(default_factory=list)
    gone: list[RemovalItem] = field(default_factory=list)
    replaced: list[RemovalItem] = field(default_factory=list)
    kept: list[RemovalItem] = field(default_factory=list)
    taken_back: list[RemovalItem] = field(default_factory=list)
    seen: set[int] = field(default_factory=set)
    first_error: str | None = None
    interrupted: bool = False


def _expected_of(holder: Holder, path_of: dict[int, str]) -> Expected | None:
    if holder.file_id not in path_of or holder.seen_size is None or not holder.seen_hash or ":" not in holder.seen_hash:
        return None
    algo, digest = holder.seen_hash.split(":", 1)
    return Expected(holder.seen_size, algo, digest)


def finish_stale_removals(
    store: StateStore,
    views: Sequence[tuple[int, ProjectView]],
    pool: ProviderPool,
    owner: str,
    usable: Mapping[str, Collection[str]],
    same_storage: Mapping[str, Collection[str]],
    lease_seconds: float = LEASE_SECONDS,
) -> int:
    """Take over removals whose remover stopped (crash, Ctrl-C, SIGKILL) on the sites this worker
    can use (project id -> usable sites) and carry them out through the same checks. Returns how
    many copies were handled; problems are logged, never raised (the worker goes on)."""
    handled = 0
    for project_id, view in views:
        sites = list(usable.get(view.name, ()))
        for site, items in _by_ticket(store.claim_stale_removals(sites, owner, lease_seconds, project_id=project_id)):
            rep_id = items[0].representation_id
            ticket = RemovalTicket(site, rep_id, owner, tuple(items), 0)
            removal = Removal(store, view, pool, owner, owner, same_storage, project_id)
            spec = view.sites[site]
            try:
                provider = pool.get(spec)
                usable_site(store, spec, provider, owner, project_id)  # step 1, now: not only when last checked
                removal.carry_out(ticket, spec, provider)
                handled += len(items)
            except SitesyncError as exc:
                log.warning("could not finish removing representation %d from %s: %s", rep_id, site, exc)
    return handled


def _by_ticket(claimed: list[tuple[str, RemovalItem]]) -> list[tuple[str, list[RemovalItem]]]:
    groups: dict[tuple[str, int], list[RemovalItem]] = {}
    for site, item in claimed:
        groups.setdefault((site, item.representation_id), []).append(item)
    return [(site, items) for (site, _rep), items in sorted(groups.items())]


__all__ = ["Removal", "RemoveResult", "finish_stale_removals"]
