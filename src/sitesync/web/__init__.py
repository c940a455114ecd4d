"""The web dashboard ("Sync Queue"): static HTML, CSS and JavaScript in ``static/``, served by the
API server at ``/``. No build step: the files are shipped as they are."""
