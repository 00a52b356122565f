"""Channels spread over several Redis servers by rendezvous hashing (comma-list ``REDIS_URL``).

The broker and the presence store each get a wrapper that routes every channel
to the one shard that owns it; records, mail and video ids stay on the first.
"""
