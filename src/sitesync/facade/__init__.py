"""The parts of ``sitesync.Client``, one module per concern; ``client.py`` assembles them."""
