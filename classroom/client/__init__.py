"""A client of the classroom protocol for Python: back ends, scripts, the tests and the
load generator. :class:`ClassroomClient` keeps itself connected and recovers what it
missed; :class:`Connection` is one WebSocket read step by step; ``wire`` frames both.
See docs/clients.md."""

from classroom.client.client import ClassroomClient, ClientError
from classroom.client.connection import Connection
from classroom.client.wire import Encoding, Frame, decode, encode, subprotocol

__all__ = ["ClassroomClient", "ClientError", "Connection", "Encoding", "Frame", "decode",
           "encode", "subprotocol"]
