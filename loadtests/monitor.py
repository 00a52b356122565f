"""Watching the server from outside: its RSS and CPU from /proc, and its /metrics counters.

Reading /proc directly (Linux) needs no extra dependency and costs microseconds
per sample. When no ``--server-pid`` is given, the process listening on the
URL's port is found through /proc/net/tcp and the processes' socket links.
"""

from __future__ import annotations

import contextlib
import os
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

_TICKS = os.sysconf("SC_CLK_TCK")
_PAGE = os.sysconf("SC_PAGE_SIZE")
_LISTEN = "0A"
_METRICS_ENV = "CLASSROOM_METRICS_TOKEN"
"""The server's bearer token for /metrics, read from the generator's environment too (as
CLASSROOM_TENANTS is), unless the caller passes one."""
METRICS_OF_INTEREST = (
    "classroom_connections",
    "classroom_frames_out_total",
    "classroom_frames_in_total",
    "classroom_bad_frames_total",
    "classroom_rate_limited_total",
    "classroom_slow_disconnects_total",
)

LOOP_TICKS = "classroom_event_loop_lag_seconds_count"
LOOP_TICKS_WITHIN_50MS = 'classroom_event_loop_lag_seconds_bucket{le="0.05"}'
LOOP_TICKS_WITHIN_250MS = 'classroom_event_loop_lag_seconds_bucket{le="0.25"}'


def _gc_pause(kind: str, generation: int, le: str | None = None) -> str:
    """One series of ``classroom_gc_pause_seconds`` (``count``, ``sum`` or a ``bucket``)."""
    labels = f'generation="{generation}"' + (f',le="{le}"' if le else "")
    return f"classroom_gc_pause_seconds_{kind}{{{labels}}}"


FULL_COLLECTIONS = _gc_pause("count", 2)
FULL_COLLECTION_SECONDS = _gc_pause("sum", 2)
COLLECTION_SERIES = {
    name: (_gc_pause("count", generation), _gc_pause("sum", generation),
           _gc_pause("bucket", generation, "0.025"))
    for name, generation in (("young", 0), ("middle", 1))
}
"""The collections short of a full one, by the name the report gives them (in a storm the
middle generation's, tens of milliseconds each, are what the loop stops for): per
generation, collections, seconds in all, and those within 25 ms."""
STALL_SERIES = (LOOP_TICKS, LOOP_TICKS_WITHIN_50MS, LOOP_TICKS_WITHIN_250MS, FULL_COLLECTIONS,
                FULL_COLLECTION_SECONDS,
                *(series for named in COLLECTION_SERIES.values() for series in named))
"""The node's own stops (``classroom/edge/stalls.py``), read as whole series: they tell a
report whether the tail it measured was the server stopping or the generator."""


@dataclass(frozen=True)
class ProcessSample:
    """One reading of a process: resident memory and CPU time used so far."""

    rss_bytes: int
    cpu_seconds: float


def sample_process(pid: int) -> ProcessSample | None:
    """RSS and user+system CPU seconds of ``pid``; None once it has gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        statm = Path(f"/proc/{pid}/statm").read_text()
    except OSError:
        return None
    # The command name may hold spaces and parentheses: fields start after the last ')'.
    fields = stat[stat.rfind(")") + 2:].split()
    utime, stime = int(fields[11]), int(fields[12])
    return ProcessSample(rss_bytes=int(statm.split()[1]) * _PAGE,
                         cpu_seconds=(utime + stime) / _TICKS)


def _cpu_line() -> list[int] | None:
    try:
        first = Path("/proc/stat").read_text().splitlines()[0].split()
    except OSError:
        return None
    return [int(v) for v in first[1:]]


def machine_cpu() -> tuple[float, float] | None:
    """(busy, total) CPU seconds of the whole machine, all cores, from /proc/stat."""
    values = _cpu_line()
    if values is None:
        return None
    idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
    total = sum(values[:8])
    return (total - idle) / _TICKS, total / _TICKS


def machine_irq() -> float | None:
    """Interrupt, softirq and steal CPU seconds of the whole machine: kernel time that no
    process is charged with, mostly loopback TCP at high message rates."""
    values = _cpu_line()
    if values is None or len(values) < 8:
        return None
    return (values[5] + values[6] + values[7]) / _TICKS


def _listening_inodes(port: int) -> set[str]:
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                parts = line.split()
                local, state, inode = parts[1], parts[3], parts[9]
                if state == _LISTEN and int(local.rsplit(":", 1)[1], 16) == port:
                    inodes.add(inode)
    return inodes


def find_listener(url: str) -> int | None:
    """The pid of the process listening on the URL's port on this machine, if visible."""
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "wss" else 80)
    wanted = {f"socket:[{inode}]" for inode in _listening_inodes(port)}
    if not wanted:
        return None
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            for fd in (proc / "fd").iterdir():
                with contextlib.suppress(OSError):
                    if os.readlink(fd) in wanted:
                        return int(proc.name)
    return None


def metrics_url(ws_url: str) -> str:
    """The server's /metrics address, next to its WebSocket endpoint."""
    parts = urlsplit(ws_url)
    scheme = "https" if parts.scheme == "wss" else "http"
    return f"{scheme}://{parts.netloc}/metrics"


def fetch_metrics(ws_url: str, timeout: float = 3.0, token: str | None = None) -> str | None:
    """The server's /metrics page as text; None when unreachable or refused.

    ``token`` (else ``$CLASSROOM_METRICS_TOKEN``) is sent as a bearer token. Proxies from
    the environment are ignored: the target is the server itself.
    """
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    token = token or os.environ.get(_METRICS_ENV) or None
    request = urllib.request.Request(metrics_url(ws_url))  # noqa: S310 - http(s) built above
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with opener.open(request, timeout=timeout) as response:
            text: str = response.read().decode("utf-8", "replace")
    except (OSError, ValueError):
        return None
    return text


def scrape_metrics(ws_url: str, timeout: float = 3.0,
                   token: str | None = None) -> dict[str, float] | None:
    """The server's classroom_* counters summed over labels, and the :data:`STALL_SERIES`
    as they are; None when unreachable."""
    text = fetch_metrics(ws_url, timeout, token)
    if text is None:
        return None
    totals: dict[str, float] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        series, _, value = line.rpartition(" ")
        if series in STALL_SERIES:
            with contextlib.suppress(ValueError):
                totals[series] = float(value)
            continue
        name = line.split("{", 1)[0].split(" ", 1)[0]
        if name in METRICS_OF_INTEREST:
            with contextlib.suppress(ValueError, IndexError):
                totals[name] = totals.get(name, 0.0) + float(line.rsplit(" ", 1)[1])
    return totals


class Monitor:
    """Per-second readings of the server process and of the whole machine."""

    def __init__(self, pid: int | None) -> None:
        self.pid = pid
        self._last_process: ProcessSample | None = sample_process(pid) if pid else None
        self._last_machine = machine_cpu()
        self._last_irq = machine_irq()
        self.rss_start = self._last_process.rss_bytes if self._last_process else None

    def sample(self, seconds: float) -> dict[str, float | None]:
        """Server RSS (MB) and CPU (% of one core), machine CPU (% of all cores), and of
        that the machine's interrupt and softirq time (``machine_irq_pct``)."""
        result: dict[str, float | None] = {"server_rss_mb": None, "server_cpu_pct": None,
                                           "machine_cpu_pct": None, "machine_irq_pct": None}
        if self.pid:
            current = sample_process(self.pid)
            if current is not None:
                result["server_rss_mb"] = round(current.rss_bytes / 2**20, 1)
                if self._last_process is not None and seconds > 0:
                    used = current.cpu_seconds - self._last_process.cpu_seconds
                    result["server_cpu_pct"] = round(100 * used / seconds, 1)
                self._last_process = current
        machine = machine_cpu()
        if machine is not None and self._last_machine is not None:
            busy = machine[0] - self._last_machine[0]
            total = machine[1] - self._last_machine[1]
            if total > 0:
                result["machine_cpu_pct"] = round(100 * busy / total, 1)
                irq = machine_irq()
                if irq is not None and self._last_irq is not None:
                    result["machine_irq_pct"] = round(100 * (irq - self._last_irq) / total, 1)
                self._last_irq = irq
        self._last_machine = machine
        return result
