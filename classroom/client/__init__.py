"""A client of the classroom protocol for Python: back ends, scripts, the tests and the
load generator (``classroom.client.wire``). See docs/clients.md."""

from classroom.client.client import ClassroomClient, ClientError
from classroom.client.wire import Encoding, Frame, decode, encode, subprotocol

__all__ = ["ClassroomClient", "ClientError", "Encoding", "Frame", "decode", "encode",
           "subprotocol"]
