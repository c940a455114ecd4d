"""Fake cloud services for the providers whose real service cannot run here (Google Drive,
Dropbox). Each is a small ASGI app served over real loopback HTTP and driven by the official
client library; each is strict: a request the real service would refuse fails with a 4xx."""
