"""HAProxy from Debian's package in front of test nodes, with ``deploy/haproxy.cfg`` as is.

The shipped configuration takes its addresses from the environment, so the tests run
the very file an operator deploys, on loopback ports, with its runtime API on a unix
socket of the test's own (for the drain procedure).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from tests.multinode.conftest import NodeProcess, free_port

CONFIG = Path(__file__).resolve().parents[2] / "deploy" / "haproxy.cfg"


def haproxy_binary() -> str | None:
    """Debian installs it in /usr/sbin, which a test's PATH may lack."""
    return shutil.which("haproxy") or shutil.which("haproxy", path="/usr/sbin:/usr/local/sbin")


@dataclass
class Balancer:
    """One haproxy process; clients connect to ``url``."""

    port: int
    admin_socket: Path
    proc: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    @classmethod
    async def start(cls, binary: str, nodes: list[NodeProcess], workdir: Path) -> Balancer:
        assert len(nodes) == 3, "deploy/haproxy.cfg names three nodes"
        port = free_port()
        admin = workdir / "haproxy-admin.sock"
        env = {**os.environ, "HAPROXY_BIND": f"127.0.0.1:{port}",
               "HAPROXY_ADMIN_SOCKET": str(admin), "HAPROXY_MAXCONN": "2000"}
        for index, node in enumerate(nodes, start=1):
            env[f"CLASSROOM_NODE{index}"] = f"127.0.0.1:{node.port}"
        check = subprocess.run([binary, "-c", "-f", str(CONFIG)], env=env,
                               capture_output=True, check=False)
        assert check.returncode == 0, check.stderr.decode()
        proc = subprocess.Popen([binary, "-db", "-f", str(CONFIG)], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        balancer = cls(port, admin, proc)
        await balancer.wait_until_up(3)
        return balancer

    async def admin(self, command: str) -> str:
        """One command on HAProxy's runtime API, e.g. ``set server nodes/node1 state drain``."""
        reader, writer = await asyncio.open_unix_connection(str(self.admin_socket))
        writer.write(command.encode() + b"\n")
        await writer.drain()
        answer = await reader.read()
        writer.close()
        await writer.wait_closed()
        return answer.decode()

    async def servers_up(self) -> int:
        """How many nodes the health checks (``/readyz``) currently find up."""
        state = await self.admin("show servers state nodes")
        # Columns: be_id be_name srv_id srv_name srv_addr srv_op_state ... (2 = running)
        rows = [line.split() for line in state.splitlines() if not line.startswith("#")]
        return sum(1 for row in rows if len(row) > 5 and row[5] == "2")

    async def wait_until_up(self, count: int, timeout: float = 15.0) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            if self.proc.poll() is not None:
                raise AssertionError(self.proc.communicate()[1].decode())
            try:
                if await self.servers_up() >= count:
                    return
            except OSError:
                pass  # the admin socket is not there yet
            if loop.time() > deadline:
                raise AssertionError(f"fewer than {count} nodes up behind haproxy")
            await asyncio.sleep(0.1)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stderr is not None:
            self.proc.stderr.close()
