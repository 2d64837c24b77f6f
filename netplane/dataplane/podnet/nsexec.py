"""Small I/O helpers that run inside another network namespace.

`/proc/sys/net` shows the namespace of the thread that opens it, so sysctls are
read and written from a short-lived thread that has `setns()`-ed into the node
namespace; the caller's own threads never change namespace (setns is per thread,
and the thread exits afterwards instead of switching back).
"""

from __future__ import annotations

import ctypes
import os
import subprocess
import threading
from pathlib import Path

CLONE_NEWNET = 0x40000000
NETNS_RUN_DIR = Path("/run/netns")


class NetnsError(OSError):
    pass


def netns_path(name: str) -> Path:
    if "/" in name or name in ("", ".", ".."):
        raise NetnsError(f"bad namespace name {name!r}")
    return NETNS_RUN_DIR / name


def netns_exists(name: str) -> bool:
    return netns_path(name).exists()


def _in_netns(name: str, work: list[tuple[str, str]], result: dict[str, object]) -> None:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        fd = os.open(netns_path(name), os.O_RDONLY | os.O_CLOEXEC)
        try:
            if libc.setns(fd, CLONE_NEWNET) != 0:
                raise NetnsError(ctypes.get_errno(), f"setns into {name}")
        finally:
            os.close(fd)
        changed = []
        for key, value in work:
            path = Path("/proc/sys") / key
            if path.read_text().strip() != value:
                path.write_text(value)
                changed.append(key)
        result["changed"] = changed
    except BaseException as e:  # handed to the caller's thread
        result["error"] = e


def ensure_sysctls(netns: str, sysctls: list[tuple[str, str]] | tuple[tuple[str, str], ...]) -> list[str]:
    """Set each `net/...` key in `netns` to its value; returns the keys that were different."""
    for key, _ in sysctls:
        if not key.startswith("net/") or ".." in key.split("/"):
            raise NetnsError(f"refusing sysctl {key!r}")
    result: dict[str, object] = {}
    thread = threading.Thread(target=_in_netns, args=(netns, list(sysctls), result), name=f"sysctl-{netns}")
    thread.start()
    thread.join()
    if "error" in result:
        raise result["error"]  # type: ignore[misc]
    changed = result["changed"]
    assert isinstance(changed, list)
    return changed


def nft(netns: str, script: str | None = None, *args: str) -> subprocess.CompletedProcess[str]:
    """Run `nft` in `netns` (`nft -f -` with `script` on stdin when given)."""
    argv = ["ip", "netns", "exec", str(netns_path(name=netns).name), "nft", *args]
    if script is not None:
        argv += ["-f", "-"]
    return subprocess.run(argv, input=script, capture_output=True, text=True, timeout=30, check=False)
