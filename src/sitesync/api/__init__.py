"""The REST API (FastAPI) and the server that runs it with a worker and the dashboard.

``create_app`` builds the application (``app.py``), ``server.py`` runs it (``sitesync serve``).
Routes live in ``routes/`` by concern and call only ``sitesync.Client``.
"""
