"""The edge: uvicorn, Starlette and the sockets; the only layer that knows them.

The WebSocket protocol with direct writes, the per-connection reader and writer,
the bounded send queue, write batching per loop iteration, rate limits, the
registry of live connections, and the web pages. A connection decodes a frame,
applies the limits and hands the command to ``classroom.handlers``; it may
import every layer below it (handlers, sessions, protocol, domain, backends) and
the runtime leaves, but nothing imports the edge except the runtime (app, cli).
"""
