"""The session layer: joins, publishes, fan-out and lifecycle, between sockets and backends.

One ``Node`` per process owns the hub (this node's members by session), the
per-session streams (live state kept in offset order), presence heartbeats and
the broker subscription. It may import the domain, the protocol's codec and
frames, the backends, ``auth``, ``presence`` and the runtime leaves
(``classroom.metrics``); it knows nothing of sockets, uvicorn or Starlette:
whatever receives frames is a ``Recipient``.
"""
