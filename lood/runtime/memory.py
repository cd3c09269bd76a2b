"""How much memory this process can still take: the machine's available memory, capped by its cgroup."""

from __future__ import annotations

import os


def _read_int(path: str) -> int | None:
    try:
        with open(path) as fh:
            text = fh.read().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def _cgroup_headroom() -> int | None:
    """Bytes left under this process's cgroup memory limit (v2, or v1), None without a limit."""
    try:
        with open("/proc/self/cgroup") as fh:
            lines = fh.read().splitlines()
    except OSError:
        return None
    best = None
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if controllers == "":  # cgroup v2: the tightest limit on the path up to the root
            parts = path.strip("/").split("/") if path.strip("/") else []
            for k in range(len(parts), -1, -1):
                base = os.path.join("/sys/fs/cgroup", *parts[:k])
                limit = _read_int(os.path.join(base, "memory.max"))
                used = _read_int(os.path.join(base, "memory.current"))
                if limit is None or used is None:
                    continue
                used -= _inactive_file(os.path.join(base, "memory.stat"), "inactive_file")
                best = min(best, limit - used) if best is not None else limit - used
        elif "memory" in controllers.split(","):
            base = os.path.join("/sys/fs/cgroup/memory", path.strip("/"))
            limit = _read_int(os.path.join(base, "memory.limit_in_bytes"))
            used = _read_int(os.path.join(base, "memory.usage_in_bytes"))
            if limit is not None and used is not None and limit < 1 << 60:
                used -= _inactive_file(os.path.join(base, "memory.stat"), "total_inactive_file")
                best = min(best, limit - used) if best is not None else limit - used
    return best


def _inactive_file(stat_path: str, key: str) -> int:
    """Reclaimable page cache counted in a cgroup's usage (0 when unknown)."""
    try:
        with open(stat_path) as fh:
            for line in fh:
                name, _, value = line.partition(" ")
                if name == key:
                    return int(value)
    except (OSError, ValueError):
        pass
    return 0


def available_bytes() -> int:
    """Memory this process can still take: MemAvailable of /proc/meminfo, capped by its cgroup's limit."""
    avail = None
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    avail = int(line.split()[1]) * 1024
    except OSError:
        pass
    if avail is None:  # not Linux: trust the physical memory
        avail = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    cg = _cgroup_headroom()
    return max(min(avail, cg) if cg is not None else avail, 0)
