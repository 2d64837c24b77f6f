"""Small I/O helpers that run inside another network namespace.

`/proc/sys/net` shows the namespace of the thread that opens it, so sysctls are
read and written from a short-lived thread that has `setns()`-ed into the node
namespace; the caller's own threads never change namespace (setns is per thread,
and the thread exits afterwards instead of switching back).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from netplane.dataplane.runtime import linux

NETNS_RUN_DIR = Path("/run/netns")


class NetnsError(OSError):
    pass


def netns_path(name: str) -> Path:
    if "/" in name or name in ("", ".", ".."):
        raise NetnsError(f"bad namespace name {name!r}")
    return NETNS_RUN_DIR / name


def netns_exists(name: str) -> bool:
    return netns_path(name).exists()


def _write_sysctls(work: list[tuple[str, str]]) -> list[str]:
    changed = []
    for key, value in work:
        path = Path("/proc/sys") / key
        if path.read_text().strip() != value:
            path.write_text(value)
            changed.append(key)
    return changed


def ensure_sysctls(netns: str, sysctls: list[tuple[str, str]] | tuple[tuple[str, str], ...]) -> list[str]:
    """Set each `net/...` key in `netns` to its value; returns the keys that were different."""
    for key, _ in sysctls:
        if not key.startswith("net/") or ".." in key.split("/"):
            raise NetnsError(f"refusing sysctl {key!r}")
    work = list(sysctls)
    return linux.in_netns(str(netns_path(netns)), lambda: _write_sysctls(work))


def run_in(netns: str, argv: list[str], stdin: str | None = None,
           timeout: float = 30) -> subprocess.CompletedProcess[str]:
    """Run `argv` with `ip netns exec` in `netns`, capturing its text output; never raises on exit status."""
    netns_path(netns)  # validates the name
    return subprocess.run(["ip", "netns", "exec", netns, *argv], input=stdin, capture_output=True, text=True,
                          timeout=timeout, check=False)


def nft(netns: str, script: str | None = None, *args: str) -> subprocess.CompletedProcess[str]:
    """Run `nft` in `netns` (`nft -f -` with `script` on stdin when given)."""
    return run_in(netns, ["nft", *args, *(["-f", "-"] if script is not None else [])], script)
