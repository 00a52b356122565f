"""HAProxy with ``deploy/haproxy.cfg`` as shipped, in front of a run's three nodes.

The same file the tests run (``tests/multinode/balancer.py``) and operators
deploy: addresses come from the environment, the runtime API listens on a unix
socket in a temporary directory. Started here, stopped by its pid.
"""

from __future__ import annotations

import contextlib
import os
import resource
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from loadtests.servers import ROOT, free_port

CONFIG = ROOT / "deploy" / "haproxy.cfg"
UP_TIMEOUT = 15.0
NODES = 3  # deploy/haproxy.cfg names three servers


def haproxy_binary() -> str:
    """Debian's haproxy (``make haproxy`` installs it); /usr/sbin may not be on PATH."""
    found = shutil.which("haproxy") or shutil.which("haproxy", path="/usr/sbin:/usr/local/sbin")
    if found is None:
        raise RuntimeError("haproxy is not installed (`make haproxy`)")
    return found


def _admin(path: Path, command: str) -> str:
    with socket.socket(socket.AF_UNIX) as sock:
        sock.settimeout(2)
        sock.connect(str(path))
        sock.sendall(command.encode() + b"\n")
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks).decode()


def _servers_up(admin: Path) -> int:
    rows = [line.split() for line in _admin(admin, "show servers state nodes").splitlines()
            if not line.startswith("#")]
    return sum(1 for row in rows if len(row) > 5 and row[5] == "2")  # 2: running


@contextlib.contextmanager
def balancer(node_ports: list[int], maxconn: int) -> Iterator[tuple[int, int]]:
    """Run HAProxy before the nodes until the block ends; yields (its pid, its port)."""
    if len(node_ports) != NODES:
        raise RuntimeError(f"deploy/haproxy.cfg names {NODES} nodes, not {len(node_ports)}")
    binary = haproxy_binary()
    port = free_port()
    # HAProxy takes two descriptors per connection and refuses to start when maxconn
    # asks for more than the hard limit allows (20,000 here: 6,231 clients at 4x did).
    maxconn = min(maxconn, (resource.getrlimit(resource.RLIMIT_NOFILE)[1] - 200) // 2)
    with tempfile.TemporaryDirectory(prefix="loadtests-haproxy-") as workdir:
        admin = Path(workdir) / "admin.sock"
        env = {**os.environ, "HAPROXY_BIND": f"127.0.0.1:{port}",
               "HAPROXY_ADMIN_SOCKET": str(admin), "HAPROXY_MAXCONN": str(maxconn)}
        for index, node_port in enumerate(node_ports, start=1):
            env[f"CLASSROOM_NODE{index}"] = f"127.0.0.1:{node_port}"
        check = subprocess.run([binary, "-c", "-f", str(CONFIG)], env=env,  # noqa: S603
                               capture_output=True, check=False, timeout=30)
        if check.returncode != 0:
            raise RuntimeError(f"haproxy refuses {CONFIG}: {check.stderr.decode()[-2000:]}")
        proc = subprocess.Popen([binary, "-db", "-f", str(CONFIG)], env=env,  # noqa: S603
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + UP_TIMEOUT
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"haproxy exited with {proc.returncode} at start")
                with contextlib.suppress(OSError):
                    if _servers_up(admin) >= NODES:
                        break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"haproxy did not see {NODES} nodes up in time")
                time.sleep(0.1)
            yield proc.pid, port
        finally:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=5)
