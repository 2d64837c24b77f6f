"""Thin ctypes wrappers for the Linux calls the runtime needs and Python 3.11 lacks.

`os.unshare`/`os.setns` arrived in Python 3.12, and there is no wrapper at all for
mount, pivot_root or prctl, so each call goes to libc directly; errors become
OSError with the errno, like the os module does.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import platform
import threading
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)

CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

MS_RDONLY = 0x1
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_NOEXEC = 0x8
MS_REMOUNT = 0x20
MS_BIND = 0x1000
MS_REC = 0x4000
MS_PRIVATE = 0x40000

MNT_DETACH = 0x2

PR_SET_NAME = 15
PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36
PR_CAPBSET_DROP = 24

CAPABILITIES = (
    "CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID", "SETPCAP",
    "LINUX_IMMUTABLE", "NET_BIND_SERVICE", "NET_BROADCAST", "NET_ADMIN", "NET_RAW", "IPC_LOCK", "IPC_OWNER",
    "SYS_MODULE", "SYS_RAWIO", "SYS_CHROOT", "SYS_PTRACE", "SYS_PACCT", "SYS_ADMIN", "SYS_BOOT", "SYS_NICE",
    "SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "MKNOD", "LEASE", "AUDIT_WRITE", "AUDIT_CONTROL", "SETFCAP",
    "MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG", "WAKE_ALARM", "BLOCK_SUSPEND", "AUDIT_READ", "PERFMON", "BPF",
    "CHECKPOINT_RESTORE",
)
# containerd's default set: what a Kubernetes container gets without securityContext.
DEFAULT_CAPABILITIES = ("CHOWN", "DAC_OVERRIDE", "FSETID", "FOWNER", "MKNOD", "NET_RAW", "SETGID", "SETUID",
                        "SETFCAP", "SETPCAP", "NET_BIND_SERVICE", "SYS_CHROOT", "KILL", "AUDIT_WRITE")

# No glibc wrappers for these (glibc 2.36); the syscall numbers are per architecture.
_SYSCALLS = {
    "x86_64": {"pivot_root": 155, "open_tree": 428, "move_mount": 429},
    "aarch64": {"pivot_root": 41, "open_tree": 428, "move_mount": 429},
}.get(platform.machine(), {})

AT_FDCWD = -100
AT_RECURSIVE = 0x8000
OPEN_TREE_CLONE = 1
MOVE_MOUNT_F_EMPTY_PATH = 0x4


def _check(result: int, what: str) -> None:
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def unshare(flags: int) -> None:
    _check(_libc.unshare(ctypes.c_int(flags)), "unshare")


def setns(fd: int, nstype: int) -> None:
    _check(_libc.setns(ctypes.c_int(fd), ctypes.c_int(nstype)), "setns")


def setns_path(path: str, nstype: int) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        setns(fd, nstype)
    finally:
        os.close(fd)


def in_netns(path: str, work: Callable[[], T]) -> T:
    """``work()`` run in the network namespace at ``path``; its result or exception is returned here.

    setns(CLONE_NEWNET) affects only the calling thread, so a short-lived thread enters the
    namespace, does the work and exits instead of switching back: the caller's own threads never
    change namespace. Sockets keep the namespace they were created in, and `/proc/sys/net` shows
    that of the thread opening it."""
    result: list[tuple[bool, object]] = []

    def run() -> None:
        try:
            setns_path(path, CLONE_NEWNET)
            result.append((True, work()))
        except BaseException as e:  # handed to the caller's thread
            result.append((False, e))

    thread = threading.Thread(target=run, name=f"in {path}", daemon=True)
    thread.start()
    thread.join()
    ok, value = result[0]
    if not ok:
        assert isinstance(value, BaseException)
        raise value
    return value  # type: ignore[return-value]


def mount(source: str | None, target: str, fstype: str | None, flags: int = 0, data: str | None = None) -> None:
    def enc(s: str | None) -> bytes | None:
        return s.encode() if s is not None else None

    result = _libc.mount(enc(source), enc(target), enc(fstype), ctypes.c_ulong(flags), enc(data))
    _check(result, f"mount {source or fstype} on {target}")


def umount2(target: str, flags: int = 0) -> None:
    _check(_libc.umount2(target.encode(), ctypes.c_int(flags)), f"umount {target}")


def _syscall_number(name: str) -> int:
    if name not in _SYSCALLS:
        raise OSError(38, f"{name}: unsupported architecture {platform.machine()}")
    return _SYSCALLS[name]


def pivot_root(new_root: str, put_old: str) -> None:
    _check(_libc.syscall(ctypes.c_long(_syscall_number("pivot_root")), new_root.encode(), put_old.encode()),
           "pivot_root")


def clone_tree(path: str) -> int:
    """A detached copy of the mount tree at ``path`` (open_tree with OPEN_TREE_CLONE), as an fd.

    Unlike a path, such a copy can be attached after the caller has moved into another
    mount namespace: a classic bind mount refuses a source from a foreign namespace.
    """
    fd = _libc.syscall(ctypes.c_long(_syscall_number("open_tree")), ctypes.c_int(AT_FDCWD), path.encode(),
                       ctypes.c_uint(OPEN_TREE_CLONE | os.O_CLOEXEC | AT_RECURSIVE))
    if fd < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"open_tree {path}: {os.strerror(err)}")
    return int(fd)


def attach_tree(fd: int, target: str) -> None:
    result = _libc.syscall(ctypes.c_long(_syscall_number("move_mount")), ctypes.c_int(fd), b"",
                           ctypes.c_int(AT_FDCWD), target.encode(), ctypes.c_uint(MOVE_MOUNT_F_EMPTY_PATH))
    _check(result, f"move_mount onto {target}")


def sethostname(name: str) -> None:
    raw = name.encode()
    _check(_libc.sethostname(raw, ctypes.c_size_t(len(raw))), "sethostname")


def prctl(option: int, arg2: int | bytes = 0) -> None:
    value: int | bytes = arg2
    arg = ctypes.c_char_p(value) if isinstance(value, bytes) else ctypes.c_ulong(value)
    _check(_libc.prctl(ctypes.c_int(option), arg, ctypes.c_ulong(0), ctypes.c_ulong(0), ctypes.c_ulong(0)), "prctl")


def set_child_subreaper() -> None:
    prctl(PR_SET_CHILD_SUBREAPER, 1)


def set_process_name(name: str) -> None:
    """Sets /proc/self/comm (15 bytes at most), which `ps` and `cat /proc/1/comm` show."""
    prctl(PR_SET_NAME, name.encode()[:15])


def last_capability() -> int:
    try:
        with open("/proc/sys/kernel/cap_last_cap") as f:
            return int(f.read())
    except OSError:
        return len(CAPABILITIES) - 1


def limit_capabilities(keep: set[str]) -> None:
    """Shrinks the bounding set; root's next execve then holds only ``keep``."""
    wanted = {CAPABILITIES.index(c) for c in keep if c in CAPABILITIES}
    for cap in range(last_capability() + 1):
        if cap not in wanted:
            prctl(PR_CAPBSET_DROP, cap)
