"""Backends: storage and messaging behind small Protocols, in memory or on Redis.

The broker (offsets, history, fan-out between nodes), the data store and its
records (rosters, progress, profiles, audit log), the presence store factory, the
one Redis client factory every Redis user shares (one server, Sentinel's
primary, or a Redis Cluster). Chosen by URL scheme, the memory one as the
embedded default. It may import the domain, ``auth`` and ``presence``, and Redis; never
the session layer, the protocol, the edge, Starlette or uvicorn.
"""
