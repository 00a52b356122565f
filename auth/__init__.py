"""Tenants and connection tokens: who a client is, decided before anything else.

This package never imports ``classroom``; the server depends on it, not the other way.
"""
