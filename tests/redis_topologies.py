"""Real Sentinel sets and Redis Clusters from Debian's binaries, on loopback, in a temp dir.

``make sentinel`` / ``make redis-cluster`` (scripts/ensure-*.sh) install the
packages; the tests start these themselves, only when a test asks for one (the
session fixtures in ``tests/conftest.py``), and stop them at the end. Timeouts
are short (a primary is declared down after 1 s) so failovers take a few seconds.
"""

from __future__ import annotations

import random
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import redis

SERVICE = "classroom"
DOWN_AFTER_MS = 1000
NODE_TIMEOUT_MS = 1000


def binary(name: str) -> str:
    """The path of a Debian Redis binary; the ensure scripts install them."""
    found = shutil.which(name) or (f"/usr/bin/{name}" if Path(f"/usr/bin/{name}").exists()
                                   else None)
    if found is None:
        raise RuntimeError(f"{name} is not installed (make sentinel / make redis-cluster)")
    return found


def _free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_ports(count: int, *, bus: bool = False) -> list[int]:
    """``count`` consecutive free loopback ports (and their cluster-bus ports +10000)."""
    for _ in range(200):
        base = random.randint(20000, 29000)
        ports = list(range(base, base + count))
        if all(_free(p) and (not bus or _free(p + 10000)) for p in ports):
            return ports
    raise RuntimeError("no free ports")


def wait_until(check: object, timeout: float, what: str) -> None:
    """Poll ``check()`` (any exception counts as not yet) until true or ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():  # type: ignore[operator]
                return
        except (redis.RedisError, OSError):
            pass
        time.sleep(0.05)
    raise RuntimeError(f"timed out waiting for {what}")


@dataclass
class Server:
    """One redis-server (or sentinel) process and how to start it again the same way."""

    port: int
    args: list[str]
    workdir: Path
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(self.args, cwd=self.workdir, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        wait_until(self.client().ping, 10, f"redis on port {self.port}")

    def kill(self) -> None:
        """``kill -9``: no shutdown, no goodbye to replicas or clients."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)
        self.proc = None

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, socket_timeout=2, socket_connect_timeout=2)

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


def start_or_undo(servers: list[Server], settle: Callable[[], None],
                  undo: Callable[[], None]) -> None:
    """Start the processes, then ``settle`` them; on any failure ``undo``, so none is left."""
    try:
        for server in servers:
            server.start()
        settle()
    except BaseException:
        undo()
        raise


def _redis_args(port: int, workdir: Path, *extra: str) -> list[str]:
    return [binary("redis-server"), "--port", str(port), "--bind", "127.0.0.1", "--save", "",
            "--appendonly", "no", "--repl-diskless-sync-delay", "0", "--dir", str(workdir),
            *extra]


@dataclass
class SentinelSet:
    """One primary, one replica, three sentinels watching them as service ``classroom``."""

    root: Path
    servers: list[Server] = field(default_factory=list)
    sentinels: list[Server] = field(default_factory=list)

    @classmethod
    def start(cls, root: Path) -> SentinelSet:
        made = cls(root)
        ports = free_ports(5)
        for index, port in enumerate(ports[:2]):
            workdir = root / f"redis-{port}"
            workdir.mkdir(parents=True)
            extra = ["--replicaof", "127.0.0.1", str(ports[0])] if index else []
            made.servers.append(Server(port, _redis_args(port, workdir, *extra), workdir))
        for port in ports[2:]:
            workdir = root / f"sentinel-{port}"
            workdir.mkdir(parents=True)
            conf = workdir / "sentinel.conf"
            conf.write_text(
                f"port {port}\nbind 127.0.0.1\ndir {workdir}\n"
                f"sentinel monitor {SERVICE} 127.0.0.1 {ports[0]} 2\n"
                f"sentinel down-after-milliseconds {SERVICE} {DOWN_AFTER_MS}\n"
                f"sentinel failover-timeout {SERVICE} 3000\n"
                f"sentinel parallel-syncs {SERVICE} 1\n"
            )
            made.sentinels.append(Server(port, [binary("redis-sentinel"), str(conf)], workdir))
        start_or_undo([*made.servers, *made.sentinels], made.wait_healthy, made.stop)
        return made

    @property
    def url(self) -> str:
        hosts = ",".join(f"127.0.0.1:{s.port}" for s in self.sentinels)
        return f"redis+sentinel://{hosts}/{SERVICE}"

    def url_db(self, db: int) -> str:
        return f"{self.url}/{db}"

    def primary_port(self) -> int:
        address = self.sentinels[0].client().execute_command(
            "SENTINEL", "GET-MASTER-ADDR-BY-NAME", SERVICE)
        return int(address[1])

    def primary(self) -> Server:
        port = self.primary_port()
        return next(s for s in self.servers if s.port == port)

    def wait_healthy(self, timeout: float = 20) -> None:
        """Every server up, the replica in sync, every sentinel knowing both and the others."""
        def healthy() -> bool:
            primary = self.primary()
            info = primary.client().info("replication")
            if info["connected_slaves"] < len(self.servers) - 1:
                return False
            for sentinel in self.sentinels:
                client = sentinel.client()
                if len(client.execute_command("SENTINEL", "SENTINELS", SERVICE)) < 2:
                    return False
                replicas = client.execute_command("SENTINEL", "REPLICAS", SERVICE)
                if sum(1 for r in replicas if "s_down" not in str(r)) < len(self.servers) - 1:
                    return False
                address = client.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", SERVICE)
                if int(address[1]) != primary.port:
                    return False
            return True

        wait_until(healthy, timeout, "the sentinel set")

    def kill_primary(self) -> Server:
        """``kill -9`` the primary; returns it (dead) so the caller can restart it later."""
        primary = self.primary()
        primary.kill()
        return primary

    def wait_failover(self, old_port: int, timeout: float = 20) -> int:
        """Wait until every sentinel names a new primary that accepts writes; its port."""
        def promoted() -> bool:
            ports = {s.client().execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME",
                                                SERVICE)[1] for s in self.sentinels}
            if len(ports) != 1 or int(next(iter(ports))) == old_port:
                return False
            return bool(self.primary().client().info("replication")["role"] == "master")

        wait_until(promoted, timeout, "the sentinels' failover")
        return self.primary_port()

    def restore(self, server: Server) -> None:
        """Start a killed server again, as a replica of the new primary.

        Told so at start: the sentinels would demote it themselves, but only after
        their next 10-second INFO round.
        """
        args = list(server.args)
        if "--replicaof" in args:
            at = args.index("--replicaof")
            del args[at:at + 3]
        server.args = [*args, "--replicaof", "127.0.0.1", str(self.primary_port())]
        server.start()
        self.wait_healthy(30)

    def stop(self) -> None:
        for server in [*self.sentinels, *self.servers]:
            server.kill()


@dataclass
class ClusterSet:
    """Three primaries and three replicas, created with ``redis-cli --cluster create``."""

    root: Path
    nodes: list[Server] = field(default_factory=list)

    @classmethod
    def start(cls, root: Path) -> ClusterSet:
        made = cls(root)
        for port in free_ports(6, bus=True):
            workdir = root / f"node-{port}"
            workdir.mkdir(parents=True)
            args = _redis_args(port, workdir, "--cluster-enabled", "yes",
                               "--cluster-config-file", "nodes.conf",
                               "--cluster-node-timeout", str(NODE_TIMEOUT_MS),
                               "--cluster-replica-validity-factor", "0")
            made.nodes.append(Server(port, args, workdir))
        start_or_undo(made.nodes, made.create, made.stop)
        return made

    def create(self) -> None:
        """Make the started nodes one cluster (a replica each) and wait until it is whole."""
        subprocess.run(
            [binary("redis-cli"), "--cluster", "create",
             *(f"127.0.0.1:{n.port}" for n in self.nodes),
             "--cluster-replicas", "1", "--cluster-yes"],
            check=True, capture_output=True, timeout=60,
        )
        self.wait_healthy()

    @property
    def url(self) -> str:
        return "redis+cluster://" + ",".join(f"127.0.0.1:{n.port}" for n in self.nodes[:3])

    def role(self, node: Server) -> str:
        return str(node.client().info("replication")["role"])

    def primaries(self) -> list[Server]:
        return [n for n in self.nodes if n.alive and self.role(n) == "master"]

    def replicas(self) -> list[Server]:
        return [n for n in self.nodes if n.alive and self.role(n) == "slave"]

    def owner(self, slot: int) -> Server:
        """The live primary that serves ``slot``, by asking a live node."""
        live = next(n for n in self.nodes if n.alive)
        for start, end, primary, *_ in live.client().execute_command("CLUSTER", "SLOTS"):
            if start <= slot <= end:
                port = int(primary[1])
                return next(n for n in self.nodes if n.port == port)
        raise LookupError(slot)

    def lowest_slot(self, primary: Server) -> int:
        """The first slot ``primary`` serves: the one ``--cluster reshard`` moves first."""
        ranges = primary.client().execute_command("CLUSTER", "SLOTS")
        return min(int(start) for start, _, owner, *_ in ranges if int(owner[1]) == primary.port)

    def reshard(self, source: Server, target: Server, slots: int = 1) -> None:
        """Move the first ``slots`` slots of ``source`` to ``target`` with redis-cli.

        The operator's own tool, as a live cluster would be rebalanced: it marks each
        slot migrating/importing, moves its keys with MIGRATE and hands the slot over.
        """
        subprocess.run(
            [binary("redis-cli"), "--cluster", "reshard", f"127.0.0.1:{source.port}",
             "--cluster-from", source.client().execute_command("CLUSTER", "MYID"),
             "--cluster-to", target.client().execute_command("CLUSTER", "MYID"),
             "--cluster-slots", str(slots), "--cluster-yes"],
            check=True, capture_output=True, timeout=60,
        )
        self.wait_healthy()

    def wait_healthy(self, timeout: float = 30) -> None:
        """Every live node says ok, agrees on the slots, and every replica is in sync."""
        def healthy() -> bool:
            live = [n for n in self.nodes if n.alive]
            views = set()
            for node in live:
                client = node.client()
                if client.cluster("info")["cluster_state"] != "ok":
                    return False
                views.add(repr(sorted((s[0], s[1], s[2][1]) for s in
                                      client.execute_command("CLUSTER", "SLOTS"))))
                info = client.info("replication")
                if info["role"] == "slave" and info["master_link_status"] != "up":
                    return False
            return len(views) == 1

        wait_until(healthy, timeout, "the cluster")

    def wait_promoted(self, dead: Server, timeout: float = 20) -> None:
        """Wait until the slots of ``dead`` are served by a live primary on every node."""
        def promoted() -> bool:
            for node in self.nodes:
                if not node.alive:
                    continue
                for _, _, primary, *_ in node.client().execute_command("CLUSTER", "SLOTS"):
                    if int(primary[1]) == dead.port:
                        return False
                if node.client().cluster("info")["cluster_state"] != "ok":
                    return False
            return True

        wait_until(promoted, timeout, "the replica's promotion")

    def restore(self, server: Server) -> None:
        """Start a killed node again: it rejoins as a replica of its shard's new primary."""
        server.start()
        self.wait_healthy()

    def stop(self) -> None:
        for node in self.nodes:
            node.kill()
