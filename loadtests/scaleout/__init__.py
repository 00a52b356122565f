"""``python -m loadtests scaleout``: what one big room costs spread over several nodes.

Issue 15, point 7. The same session shape (one trainer publishing at a steady
rate, everyone else listening: the ``steady`` preset) is measured in four
topologies, each on fresh nodes, each run repeated (the machine is shared):

- ``cluster3``: ``--nodes`` (3) ``classroom serve`` processes on a Redis Cluster
  (3 primaries + 3 replicas on loopback, started here, ``tests/redis_topologies.py``),
  one session of ``--members`` (1,500) dealt round-robin over the nodes;
- ``cluster1``: one node on the same cluster, a session of members / nodes (500);
- ``memory1``: one node on the embedded broker, the same 500;
- ``haproxy3``: as ``cluster3``, but every client connects through HAProxy with
  ``deploy/haproxy.cfg`` (leastconn), to measure what the balancer carries.

With ``--rooms`` (several sessions of ``--members``, each with its trainer)
the single-node shapes get rooms / nodes of them. Each node then carries the
same number of connections and deliveries per second, so the per-node figures
show what adding nodes costs per delivery.
``config.py`` holds the knobs, ``probe.py`` reads each node and each Redis
process once a second, ``runner.py`` runs every shape, ``measure.py`` one run
of one shape (``isolation.py`` keeps the runs apart in the cluster),
``analysis.py`` and ``figures.py`` turn its readings into figures, and
``render.py`` writes the Markdown.
"""
