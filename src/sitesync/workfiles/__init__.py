"""Workfile sync (issue 15): artists' mutable working files between sites, a separate kind of
tracked file from published ones. ``versions.py`` is the causality logic (pure), ``scan.py`` the
change detection, ``placing.py`` the checked writes to storage, ``step.py`` one sync pass (scan,
record, propagate, prune) that ``work sync`` and the worker loop run, ``records.py`` the typed
results the facade returns."""
