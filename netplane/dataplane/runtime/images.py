"""The image catalogue: which local program stands in for a container image.

Containers here are host processes, so an "image" is a recipe for an argv over
programs installed on this machine. The recipe keeps Docker's split between an
image's ENTRYPOINT and CMD, because that is what a Pod's ``command`` and ``args``
override: ``command`` replaces the entrypoint (and drops CMD), ``args`` replaces CMD.
A *launcher* is different: it is prepended whatever the Pod says, because it plays
the part of the image's filesystem (busybox's applet links, nginx's config).
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
BUSYBOX_BIN = "/run/.busybox"

SUPPORTED = (
    "nginx:* (Debian nginx serving the welcome page on :80)",
    "netplane/echo and */echo-basic* (an HTTP echo server on each containerPort, 8080 when none)",
    "busybox* and alpine* (busybox: sh, wget, nslookup, ip, sleep, ...)",
    "python:* (this machine's Python interpreter)",
    "netplane/coredns and */coredns (netplane's cluster DNS server)",
    "netplane/node-cache and */k8s-dns-node-cache (netplane's node-local DNS cache)",
    "netplane/ingress-nginx and */ingress-nginx/controller* (an ingress-nginx instance on netplane's gateway engine)",
)


@dataclass(frozen=True)
class ImageError:
    """An image that cannot be run here; the agent reports it as a waiting container."""

    image: str
    message: str
    reason: str = "ErrImagePull"


@dataclass(frozen=True)
class ImageProgram:
    image: str
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class _Recipe:
    name: str
    matches: Callable[[str], bool]
    requires: str  # a program that must be on this machine
    launcher: Callable[[], list[str]]
    entrypoint: Callable[[Sequence[int]], list[str]]
    cmd: list[str]
    rewrite_argv0: Callable[[list[str]], list[str]] = lambda argv: argv


def repository(image: str) -> str:
    """`docker.io/library/nginx:1.25@sha256:…` → `nginx`; other registries keep their path."""
    name = image.split("@", 1)[0]
    last_slash = name.rfind("/")
    colon = name.rfind(":")
    if colon > last_slash:
        name = name[:colon]
    for prefix in ("docker.io/", "index.docker.io/", "registry-1.docker.io/"):
        if name.startswith(prefix):
            name = name[len(prefix):]
    if name.startswith("library/"):
        name = name[len("library/"):]
    return name


def _last(repo: str) -> str:
    return repo.rsplit("/", 1)[-1]


def _python_image_interpreter() -> str:
    # A python:* image is a plain interpreter, so prefer the system one over the venv.
    return "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable


def _python_argv0(argv: list[str]) -> list[str]:
    if argv and argv[0] in ("python", "python3", "python3.11"):
        return [_python_image_interpreter(), *argv[1:]]
    return argv


# The busybox package installs no applet links (a host must keep its own sh, ip, ...),
# so the launcher links every applet into the pod's private /run and puts that first
# on PATH: `sleep`, `wget`, `nslookup` then resolve to busybox, as in the real image.
_BUSYBOX_LAUNCHER = (
    f'mkdir -p {BUSYBOX_BIN} && busybox --install -s {BUSYBOX_BIN} 2>/dev/null; '
    f'PATH={BUSYBOX_BIN}:$PATH; export PATH; exec "$@"'
)

def _dns_recipe(name: str, upstream_image: str, command: str) -> _Recipe:
    """netplane's own DNS programs stand in for CoreDNS and node-cache: the args are theirs
    (`serve ...`, `cache ...`), not a Corefile."""
    return _Recipe(
        name=name,
        matches=lambda repo: repo == f"netplane/{name}" or _last(repo) == upstream_image,
        requires=sys.executable,
        launcher=lambda: [],
        entrypoint=lambda ports: [sys.executable, "-m", "netplane.dataplane.dns"],
        cmd=[command],
    )


def _ingress_nginx_recipe() -> _Recipe:
    """The gateway engine stands in for the ingress-nginx controller image: the args are netplane's
    (`--class`, `--instance`), as the IngressNginx controller lays them out, not the controller's flags."""
    return _Recipe(
        name="ingress-nginx",
        matches=lambda repo: repo == "netplane/ingress-nginx" or "/ingress-nginx/controller" in f"/{repo}",
        requires="nginx",
        launcher=lambda: [],
        entrypoint=lambda ports: [sys.executable, "-m", "netplane.dataplane.ingress"],
        cmd=[],
    )


_RECIPES: tuple[_Recipe, ...] = (
    _Recipe(
        name="nginx",
        matches=lambda repo: repo == "nginx",
        requires="nginx",
        launcher=lambda: [sys.executable, "-m", "netplane.images.nginx"],
        entrypoint=lambda ports: [],
        cmd=["nginx", "-g", "daemon off;"],
    ),
    _Recipe(
        name="echo",
        matches=lambda repo: repo == "netplane/echo" or _last(repo).startswith("echo-basic"),
        requires=sys.executable,
        launcher=lambda: [],
        entrypoint=lambda ports: [sys.executable, "-m", "netplane.images.echo",
                                  *[a for p in (ports or [8080]) for a in ("--port", str(p))]],
        cmd=[],
    ),
    _Recipe(
        name="busybox",
        matches=lambda repo: _last(repo).startswith(("busybox", "alpine")) or repo.startswith(("busybox", "alpine")),
        requires="busybox",
        launcher=lambda: [shutil.which("busybox") or "busybox", "sh", "-c", _BUSYBOX_LAUNCHER, "busybox"],
        entrypoint=lambda ports: [],
        cmd=["sh"],
    ),
    _dns_recipe("coredns", "coredns", "serve"),
    _dns_recipe("node-cache", "k8s-dns-node-cache", "cache"),
    _ingress_nginx_recipe(),
    _Recipe(
        name="python",
        matches=lambda repo: repo == "python",
        requires=sys.executable,
        launcher=lambda: [],
        entrypoint=lambda ports: [],
        cmd=["python3"],
        rewrite_argv0=_python_argv0,
    ),
)


def supported_message(image: str) -> str:
    return (f'image "{image}" is not available: netplane runs containers as programs of this machine '
            f"and supports only {'; '.join(SUPPORTED)}")


def resolve(image: str, command: Sequence[str] | None = None, args: Sequence[str] | None = None,
            ports: Sequence[int] = ()) -> ImageProgram | ImageError:
    """The argv for a container, with Kubernetes' command/args override rules."""
    repo = repository(image.strip())
    recipe = next((r for r in _RECIPES if r.matches(repo)), None)
    if recipe is None:
        return ImageError(image, supported_message(image))
    installed = os.path.exists(recipe.requires) if os.path.isabs(recipe.requires) else shutil.which(recipe.requires)
    if not installed:
        return ImageError(image, f'image "{image}" needs {recipe.requires}, which is not installed on this machine')
    if command:
        argv = [*command, *(args or [])]
    elif args:
        argv = [*recipe.entrypoint(ports), *args]
    else:
        argv = [*recipe.entrypoint(ports), *recipe.cmd]
    argv = recipe.rewrite_argv0(argv)
    if not argv:
        return ImageError(image, f'image "{image}": nothing to run (no command, args or default command)')
    return ImageProgram(image, [*recipe.launcher(), *argv], {"PATH": DEFAULT_PATH, "HOME": "/root"})
