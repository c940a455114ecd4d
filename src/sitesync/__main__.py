"""``python -m sitesync`` runs the command line."""

from sitesync.cli import main

main()
