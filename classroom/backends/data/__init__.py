"""Durable server-side records (rosters, progress, profiles, audit) behind one small store."""
