"""Real server processes on the machine's Redis, as the multi-node tests start them."""

from tests.multinode.conftest import cluster

__all__ = ["cluster"]
