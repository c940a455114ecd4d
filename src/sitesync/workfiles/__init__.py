"""Workfile sync (issue 15): artists' mutable working files between sites.

``select`` says which files of a project folder are workfiles (work-area and ignore patterns),
``scan`` finds what changed since the last scan (stat first, hash only what changed, renames,
files still being written), ``watch`` hears saves as they happen so a scan of just those paths can
run at once (periodic full scans stay the source of truth).
"""
