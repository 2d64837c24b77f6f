"""The pod's private view of the machine, built by its PID 1 (the "pause" process).

The pod sees the host's filesystem through a fresh root: a small tmpfs holding, for each
top-level host directory, a copy-on-write overlay whose upper layer is pod-private
memory (read-only bind mounts where the directory has submounts an overlay would hide,
such as /sys). So the pod can write anywhere — and a container can mount a volume at a
path the host does not have, such as /data or /etc/config — yet the host's files never
change. /dev holds only the usual character devices, a private devpts and mqueue.
On top: writable private tmpfs on /tmp, /run, /var/log and /dev/shm (two nginx pods never share a pid file or a
log), /proc of the pod's own PID namespace, the pod's hosts/hostname/resolv.conf, and
an empty read-only tmpfs over every hidden path (the data directory with its admin
credentials and the other pods' files).
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from pathlib import Path

import netplane
from netplane.dataplane.runtime import linux
from netplane.dataplane.runtime.linux import (
    MNT_DETACH,
    MS_BIND,
    MS_NODEV,
    MS_NOEXEC,
    MS_NOSUID,
    MS_PRIVATE,
    MS_RDONLY,
    MS_REC,
    MS_REMOUNT,
    mount,
)
from netplane.dataplane.runtime.spec import PodRuntimeSpec

# Replaced by the pod's own mounts, so the host's content is not bound at all.
PRIVATE_TOP = ("proc", "tmp", "run")
PRIVATE_TMPFS = {"/tmp": "1777", "/run": "755", "/var/log": "755", "/dev/shm": "1777"}
OLD_ROOT = ".netplane-old-root"


def _bind(source: str, target: str, read_only: bool) -> None:
    mount(source, target, None, MS_BIND | MS_REC)
    if read_only:
        # A bind mount takes MS_RDONLY only on a remount, and only for that one mount
        # (submounts such as /dev/pts keep their own flags).
        mount(None, target, None, MS_BIND | MS_REMOUNT | MS_RDONLY)


def _touch(path: str) -> None:
    with open(path, "a"):
        pass


def _mount_point(new: str, target: str) -> str:
    """``target`` inside the new root, following a symlink there rather than on the host.

    /etc/resolv.conf is often a link into /run, which is the pod's own tmpfs here: the
    file is created there, since nothing of the host's /run is visible anyway.
    """
    dst = new + target
    for _ in range(8):
        if not os.path.islink(dst):
            break
        link = os.readlink(dst)
        dst = new + link if link.startswith("/") else os.path.join(os.path.dirname(dst), link)
    if not os.path.exists(dst):
        if not any(dst.startswith(new + p + "/") for p in PRIVATE_TMPFS):
            raise OSError(f"cannot provide {target}: the host has no such file to mount over")
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        _touch(dst)
    return dst


def _mount_points() -> list[str]:
    with open("/proc/self/mountinfo") as f:
        return [line.split()[4].replace("\\040", " ") for line in f]


# The devices a container runtime gives a container; the host's disks stay out of reach.
DEVICES = ("null", "zero", "full", "random", "urandom", "tty")


def _runtime_paths() -> list[str]:
    """Where the running netplane comes from: its virtualenv, its interpreter and its sources."""
    package_root = os.path.dirname(os.path.dirname(os.path.abspath(netplane.__file__)))
    paths = {os.path.realpath(p) for p in (sys.prefix, sys.base_prefix, package_root)}
    return sorted(paths)


def _minimal_dev(dst: str) -> None:
    mount("tmpfs", dst, "tmpfs", MS_NOSUID, "mode=755,size=64k")
    for name in DEVICES:
        _touch(f"{dst}/{name}")
        mount(f"/dev/{name}", f"{dst}/{name}", None, MS_BIND)
    for name in ("pts", "shm", "mqueue"):
        os.mkdir(f"{dst}/{name}")
    # A private devpts instance: the pod's terminals (kubectl exec -t) are its own.
    mount("devpts", f"{dst}/pts", "devpts", MS_NOSUID | MS_NOEXEC, "newinstance,ptmxmode=0666,mode=620")
    os.symlink("pts/ptmx", f"{dst}/ptmx")
    mount("mqueue", f"{dst}/mqueue", "mqueue", MS_NOSUID | MS_NODEV | MS_NOEXEC)  # of the pod's IPC namespace
    for name, target in (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"), ("stdout", "/proc/self/fd/1"),
                         ("stderr", "/proc/self/fd/2")):
        os.symlink(target, f"{dst}/{name}")


def build_root(spec: PodRuntimeSpec, staging: Path) -> None:
    """Must run in fresh mount and PID namespaces (it mounts /proc of the caller's PID namespace)."""
    # Nothing done from here on may propagate back to the host's mount table.
    mount(None, "/", None, MS_REC | MS_PRIVATE)
    staging.mkdir(parents=True, exist_ok=True)
    new = str(staging)
    mount("tmpfs", new, "tmpfs", MS_NOSUID | MS_NODEV, "mode=755,size=4m")
    upper = str(staging) + ".upper"
    os.makedirs(upper, exist_ok=True)
    mount("tmpfs", upper, "tmpfs", MS_NOSUID | MS_NODEV, "mode=700")
    with_submounts = _mount_points()
    for entry in os.scandir("/"):
        src, dst = f"/{entry.name}", f"{new}/{entry.name}"
        if entry.is_symlink():
            os.symlink(os.readlink(src), dst)  # /bin → usr/bin and the like stay relative links
        elif entry.is_dir(follow_symlinks=False):
            os.mkdir(dst, 0o755)
            if entry.name in PRIVATE_TOP:
                continue
            if entry.name == "dev":
                _minimal_dev(dst)
            elif entry.name != "sys" and not any(m.startswith(src + "/") for m in with_submounts):
                # Copy-on-write: the pod may write (and create mount points such as
                # /etc/config) in its own layer, and the host's files never change.
                for layer in ("u", "w"):
                    os.makedirs(f"{upper}/{entry.name}/{layer}")
                mount("overlay", dst, "overlay", 0,
                      f"lowerdir={src},upperdir={upper}/{entry.name}/u,workdir={upper}/{entry.name}/w")
            else:
                # An overlay would hide the host's submounts below it; bind instead, read-only.
                _bind(src, dst, read_only=True)
        elif entry.is_file(follow_symlinks=False):
            _touch(dst)
            _bind(src, dst, read_only=True)
    for path, mode in PRIVATE_TMPFS.items():
        if os.path.isdir(new + path):
            mount("tmpfs", new + path, "tmpfs", MS_NOSUID | MS_NODEV, f"mode={mode}")
    for path in _runtime_paths():
        # netplane itself (its interpreter and sources, which image wrappers run from) may live
        # under a directory the pod gets privately, e.g. a checkout in /tmp: put it back, read-only.
        if any(path == p or path.startswith(p + "/") for p in PRIVATE_TMPFS) and os.path.isdir(path):
            os.makedirs(new + path, exist_ok=True)
            _bind(path, new + path, read_only=True)
    mount("proc", new + "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    for target, source in spec.etc_files.items():
        _bind(source, _mount_point(new, target), read_only=True)
    for hidden in spec.hidden:
        dst = new + os.path.abspath(hidden)
        if os.path.isdir(dst):
            mount("tmpfs", dst, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=000,size=4k")
        elif os.path.exists(dst):
            _bind("/dev/null", dst, read_only=True)
    os.mkdir(f"{new}/{OLD_ROOT}")
    os.chdir(new)
    linux.pivot_root(".", OLD_ROOT)
    os.chdir("/")
    linux.umount2(f"/{OLD_ROOT}", MNT_DETACH)
    os.rmdir(f"/{OLD_ROOT}")


def pause(ready_fd: int, spec: PodRuntimeSpec, staging: Path) -> None:
    """Body of the pod's PID 1: build the namespaces, report, then only reap orphans. Never returns."""
    code = 0
    try:
        # Signals are taken with sigwait: a PID-namespace init ignores any signal it has
        # no handler for, but blocked signals are queued for it.
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGCHLD, signal.SIGTERM, signal.SIGINT, signal.SIGHUP})
        # If the shim dies unexpectedly the pod dies with it (PID 1 exiting kills the
        # whole PID namespace): no container is left running unsupervised.
        linux.prctl(linux.PR_SET_PDEATHSIG, signal.SIGKILL)
        linux.set_process_name("pause")
        linux.unshare(linux.CLONE_NEWNS | linux.CLONE_NEWUTS | linux.CLONE_NEWIPC)
        linux.sethostname(spec.hostname)
        build_root(spec, staging)
        os.write(ready_fd, b"ok")
        os.close(ready_fd)
        while True:
            sig = signal.sigwait({signal.SIGCHLD, signal.SIGTERM, signal.SIGINT, signal.SIGHUP})
            if sig != signal.SIGCHLD:
                break
            with contextlib.suppress(ChildProcessError):
                while os.waitpid(-1, os.WNOHANG)[0] > 0:
                    pass
    except BaseException as e:  # report anything, then leave without running the shim's cleanup
        with contextlib.suppress(OSError):
            os.write(ready_fd, f"sandbox setup failed: {e}".encode())
        code = 1
    os._exit(code)
