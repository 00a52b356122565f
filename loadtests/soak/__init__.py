"""``python -m loadtests soak``: sessions start, run and end in a loop; nothing may leak.

The soak starts its own server nodes (``nodes.py``), plays rooms whose sessions
follow one another for ``--duration`` seconds with every event kind and every
kind of client churn (``room.py``, ``people.py``), samples each node's RSS and
live-object counts (``/debug/census``, ``sampler.py``) and, once every session
has ended and the nodes have settled, compares them with the baseline taken
after a warm-up (``verdict.py``): PASS or FAIL, with the figures.
"""
