"""Fuzzing, as a permanent part of the suite (issue 12, point 6).

Property-based tests (Hypothesis) throw frames that are wrong in every way at a
real server, over every command and event kind, in JSON and in MessagePack; the
server API is fuzzed from its own OpenAPI document (Schemathesis). The runs are
bounded and seeded (``tests/fuzz/profiles.py``); ``CLASSROOM_FUZZ_EXAMPLES=2000``
selects a long run.
"""
