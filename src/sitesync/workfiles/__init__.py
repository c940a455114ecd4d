"""Workfile sync (issue 15): artists' mutable working files between sites, a separate kind of
tracked file from published ones.

``select`` says which files of a project folder are workfiles (work-area and ignore patterns),
``scan`` finds what changed since the last scan (stat first, hash only what changed, renames,
files still being written), ``watch`` hears saves as they happen so a scan of just those paths can
run at once (periodic full scans stay the source of truth). ``versions`` is the causality logic
(pure), ``placing`` the checked writes to storage, ``step`` one sync pass (scan, record, propagate,
prune) that ``work sync`` and the worker loop (``loop``) run, ``records`` the typed results the
facade returns.
"""
