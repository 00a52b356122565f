"""Starting and stopping the servers that ``compare`` and ``ceiling`` measure.

Each server is one child process on a free loopback port, started with an
environment of its own; it is stopped by its pid only (SIGTERM, then SIGKILL
after a bounded wait), whatever happens to the run. Its output goes to a
temporary file that is shown only when it fails to start.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import IO

ROOT = Path(__file__).resolve().parents[1]
START_TIMEOUT = 30.0
STOP_TIMEOUT = 15.0


def free_port() -> int:
    """A loopback port that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def clean_environment() -> dict[str, str]:
    """This process's environment without the servers' own settings."""
    return {key: value for key, value in os.environ.items()
            if not key.startswith(("CLASSROOM_", "REDIS_URL"))}


class ManagedServer:
    """One server process: ``with ManagedServer(...) as server:`` starts and stops it."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], port: int,
                 *, cwd: Path = ROOT) -> None:
        self.name = name
        self.cwd = cwd
        """Where it runs: ``-m classroom.cli`` there imports that checkout's code."""
        self.argv = argv
        self.env = env
        self.port = port
        self.proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def pid(self) -> int:
        """The server's process id (it must have been started)."""
        if self.proc is None:
            raise RuntimeError(f"{self.name} is not running")
        return self.proc.pid

    def start(self) -> None:
        """Start the process and wait (bounded) until its port accepts connections."""
        keep = os.environ.get("LOADTESTS_SERVER_LOGS")  # a folder: keep every server's output
        if keep:
            os.makedirs(keep, exist_ok=True)
            self._log = open(os.path.join(keep, f"{self.name}-{os.getpid()}.log"), "w+b")  # noqa: SIM115
        else:
            self._log = tempfile.TemporaryFile(prefix=f"loadtests-{self.name}-")  # noqa: SIM115
        self.proc = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [sys.executable, *self.argv], cwd=self.cwd, env=self.env,
            stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode} at start:\n"
                                   f"{self.output()}")
            with contextlib.suppress(OSError), \
                    socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                return
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"{self.name} did not listen on port {self.port} within "
                           f"{START_TIMEOUT:g} s:\n{self.output()}")

    def stop(self) -> int | None:
        """SIGTERM this server's pid, SIGKILL it if it lingers; its exit status."""
        proc = self.proc
        if proc is None:
            return None
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
        if self._log is not None:
            self._log.close()
            self._log = None
        return proc.returncode

    def output(self, limit: int = 4000) -> str:
        """The tail of what the server printed."""
        if self._log is None:
            return ""
        self._log.flush()
        self._log.seek(0)
        return self._log.read().decode("utf-8", "replace")[-limit:]

    def __enter__(self) -> ManagedServer:
        self.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.stop()


@contextlib.contextmanager
def started_nodes(count: int, env: dict[str, str], name: str) -> Iterator[list[ManagedServer]]:
    """``count`` fresh ``classroom serve`` nodes on free loopback ports, named ``name``
    and their number; all stopped (by pid) on the way out, whatever happens."""
    nodes: list[ManagedServer] = []
    try:
        for n in range(count):
            port = free_port()
            node = ManagedServer(f"{name}{n}", [
                "-m", "classroom.cli", "serve", "--host", "127.0.0.1", "--port", str(port)],
                env, port)
            node.start()
            nodes.append(node)
        yield nodes
    finally:
        for node in nodes:
            node.stop()


def check_redis(url: str) -> None:
    """Raise RuntimeError unless Redis answers at ``url`` (``make redis`` starts one)."""
    import redis

    client = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        raise RuntimeError(f"Redis does not answer at {url} ({type(exc).__name__}); "
                           "`make redis` starts the local one") from None
    finally:
        client.close()


def delete_prefixes(url: str, prefixes: list[str]) -> int:
    """Delete every key under ``<prefix>:`` for each prefix (and nothing else)."""
    import redis

    client = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=10)
    removed = 0
    try:
        for prefix in prefixes:
            batch: list[bytes] = []
            for key in client.scan_iter(match=f"{prefix}:*", count=1000):
                batch.append(key)
                if len(batch) >= 1000:
                    removed += int(client.delete(*batch))
                    batch.clear()
            if batch:
                removed += int(client.delete(*batch))
    finally:
        client.close()
    return removed
