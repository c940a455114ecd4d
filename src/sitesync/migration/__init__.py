"""Moving a studio from OpenPype's or AYON's Site Sync to sitesync.

* ``openpype_settings``: OpenPype's exported settings (system, project, local) as sitesync settings.
* ``openpype_representations`` and ``ayon_sitesync``: the other system's record of which file is on
  which site, read into ``records.ImportedRepresentation``s.
* ``importer``: registers those in the catalog (hashing each file where a copy can be read),
  idempotently, reporting everything it could not take over.

Every mapper reports each key it mapped and each key it could not map, with the reason: nothing is
dropped silently. docs/migration.md has the mapping table and the cut-over checklist.
"""
