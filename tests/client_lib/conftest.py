"""Real server processes on the machine's Redis, as the multi-node tests start them."""

from tests.client_lib.support import clients
from tests.multinode.conftest import cluster

__all__ = ["clients", "cluster"]
