"""Fakes of third-party services, run in-process on loopback for tests."""
