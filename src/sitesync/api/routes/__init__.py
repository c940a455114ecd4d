"""API routes by concern. Each handler calls ``sitesync.Client`` and nothing else."""
