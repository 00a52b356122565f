"""Who is online in which session, across connections, devices and (later) nodes.

This package never imports ``classroom``: entries carry opaque ``bytes`` info.
"""
