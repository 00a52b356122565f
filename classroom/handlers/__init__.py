"""Command handlers: what each client command does, one small function per command, in a table.

A handler gets the node's services and a ``Peer`` (the narrow view of a client
connection it needs: its identity, memberships, and a way to send frames and to
close), so every command is tested without a socket. It may import the session
layer, the integrations (video), the protocol, the domain, the backends'
exceptions and ``auth``; never the edge, uvicorn or Starlette.
"""
