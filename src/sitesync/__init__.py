"""sitesync: keeps the published files of film, animation and game studios where people need them.

The public Python API is ``sitesync.Client``; errors are in ``sitesync.errors``.
"""

from sitesync.client import Client
from sitesync.errors import SitesyncError, UserError

__version__ = "0.1.0"
__all__ = ["Client", "SitesyncError", "UserError", "__version__"]
