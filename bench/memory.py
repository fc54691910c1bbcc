"""Memory of a process tree from ``/proc``: RSS, its peak, private memory and PSS.

The decoded cache is memory-mapped: its pages in the page cache count in the
RSS of every process that touched them. PSS divides each shared page among
the processes mapping it, so PSS is the fair per-process cost; USS (the pages
only this process maps) is what stopping it would free; ``RssAnon`` is its
anonymous memory (heap, arrays being built). The part of RSS and PSS that maps
files below the cache folder is counted apart: those pages are the shared
cache, in memory once however many workers read them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

_KIB = 1024


@dataclass(frozen=True)
class ProcessMemory:
    """Memory of one process, in bytes."""

    pid: int
    role: str
    rss: int
    peak_rss: int
    anon: int
    pss: int
    uss: int
    cache_rss: int = 0
    cache_pss: int = 0

    @property
    def pss_outside_cache(self) -> int:
        """PSS without the pages of the shared decoded cache."""
        return self.pss - self.cache_pss


def _kib_fields(lines: list[str]) -> dict[str, int]:
    """``Name:  123 kB`` lines as name -> bytes (other lines skipped)."""
    fields: dict[str, int] = {}
    for line in lines:
        name, _, value = line.partition(":")
        parts = value.split()
        if len(parts) == 2 and parts[1] == "kB":
            fields[name] = int(parts[0]) * _KIB
    return fields


def _status_fields(pid: int) -> dict[str, int]:
    """The sizes in ``/proc/<pid>/status`` (VmRSS, VmHWM, RssAnon, ...)."""
    return _kib_fields(Path(f"/proc/{pid}/status").read_text().splitlines())


def _rollup(pid: int) -> dict[str, int]:
    """The totals of ``/proc/<pid>/smaps_rollup`` (Pss, Private_Clean, ...)."""
    return _kib_fields(Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:])


def _cache_mapped(pid: int, cache_dir: Path) -> tuple[int, int]:
    """RSS and PSS (bytes) of the mappings of files below ``cache_dir``."""
    folder, inside = str(cache_dir.resolve()) + "/", False
    rss = pss = 0
    for line in Path(f"/proc/{pid}/smaps").read_text().splitlines():
        name, _, rest = line.partition(":")
        if "-" in line.split(" ", 1)[0]:  # a mapping's header: address range, ..., path
            inside = line.split()[-1].startswith(folder)
        elif inside and name in ("Rss", "Pss"):
            size = int(rest.split()[0]) * _KIB
            rss, pss = (rss + size, pss) if name == "Rss" else (rss, pss + size)
    return rss, pss


def children(pid: int) -> list[int]:
    """Direct children of ``pid`` (from every thread's ``children`` list)."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text()
        found += [int(child) for child in text.split()]
    return sorted(set(found))


def descendants(pid: int) -> list[int]:
    """``pid`` and every process below it, parents first."""
    tree, queue = [], [pid]
    while queue:
        current = queue.pop(0)
        tree.append(current)
        try:
            queue += children(current)
        except FileNotFoundError:
            continue
    return tree


def _role(pid: int) -> str:
    command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    if "multiprocessing" in command and "resource_tracker" in command:
        return "resource tracker"
    if "multiprocessing" in command or "spawn_main" in command:
        return "worker"
    return "main"


def read_memory(pid: int, cache_dir: Path) -> ProcessMemory:
    """The memory of process ``pid`` now, with the part that maps ``cache_dir``'s files."""
    status, rollup = _status_fields(pid), _rollup(pid)
    cache_rss, cache_pss = _cache_mapped(pid, cache_dir)
    return ProcessMemory(
        pid=pid,
        role=_role(pid),
        rss=status.get("VmRSS", 0),
        peak_rss=status.get("VmHWM", 0),
        anon=status.get("RssAnon", 0),
        pss=rollup.get("Pss", 0),
        uss=rollup.get("Private_Clean", 0) + rollup.get("Private_Dirty", 0),
        cache_rss=cache_rss,
        cache_pss=cache_pss,
    )


def tree_memory(pid: int, cache_dir: Path) -> list[ProcessMemory]:
    """The memory of ``pid`` and its descendants that still run."""
    found: list[ProcessMemory] = []
    for member in descendants(pid):
        try:
            found.append(read_memory(member, cache_dir))
        except (FileNotFoundError, ProcessLookupError):
            continue
    return found


def tree_cpu_seconds(pid: int) -> float:
    """CPU seconds (user + system) used so far by ``pid`` and every process below it,
    including the children they have already waited for; 0 when ``pid`` is gone."""
    ticks = 0
    for member in descendants(pid):
        try:
            text = Path(f"/proc/{member}/stat").read_text()
        except FileNotFoundError:
            continue
        fields = text.rsplit(")", 1)[1].split()  # after the command name, which may hold spaces
        ticks += sum(int(value) for value in fields[11:15])  # utime stime cutime cstime
    return ticks / os.sysconf("SC_CLK_TCK")
