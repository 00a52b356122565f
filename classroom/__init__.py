"""The classroom server: live, collaborative course sessions over WebSocket."""

__version__ = "0.1.0"
