"""Physical identity: what sitesync checks at the storage before it trusts a name.

* ``markers``: the identity of a site's storage (a marker file at each root, like git-annex's
  repository UUID) and how it is read and written through a provider;
* ``storage``: proving, against the catalog's records, that a site's roots are its own storage
  right now (mounted, not another site's, not inside another site's storage);
* ``content``: whether the file at a location is the content expected there right now (storage
  fingerprint first, hash when that cannot tell).

Paths staying beneath a root is the providers' part (``providers/beneath.py``).
"""
