"""The reference: the same workload on python-socketio, the stack most Python teams pick.

``server.py`` is a python-socketio ``AsyncServer`` (ASGI, on uvicorn, one worker)
with its Redis manager, written as a typical team would write it; ``client.py`` is
the load generator's driver for it, on python-socketio's own ``AsyncClient``.
``python -m loadtests compare`` runs both against our server; see loadtests/README.md.
"""

from __future__ import annotations
