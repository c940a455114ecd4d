"""Studio workflows built on the core: validate and fsck a site, preferred content per site (the
rule language and its evaluation), waiting for a representation, clearing a project from a site.

Each module holds the logic of one workflow; ``sitesync.Client`` exposes them as thin methods.
"""
