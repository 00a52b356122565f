"""Load generator for the classroom server: ``python -m loadtests run ...``.

It speaks the real wire protocol with real tokens from several client
processes, so what it measures is the server and not a test double; see
``loadtests/README.md`` for the scenarios and what each reported number means.
"""

from __future__ import annotations
