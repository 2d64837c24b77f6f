"""A running gateway engine instance: an nginx master with the engine's Lua, its prefix directory and
its control channel.

Routes (virtual hosts), backends and certificates are pushed over the unix socket and take effect
without a reload. Only a change of the listener set rewrites nginx.conf; then the candidate passes
`nginx -t` and a LuaJIT compile of every Lua file first, and if nginx refuses it anyway (a port taken,
say) the last good file is put back, so the running configuration is also the one a restart would use.

The engine runs in whatever network namespace its process is in; callers choose the namespace.
"""

from __future__ import annotations

import datetime as dt
import http.client
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.parse
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import orjson
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from netplane.dataplane.gateway.config import (
    CANDIDATE_FILE,
    CONF_FILE,
    CONTROL_DIR,
    ERROR_LOG,
    FALLBACK_CERT,
    FALLBACK_KEY,
    GOOD_FILE,
    LUA_PACKAGE,
    LUA_SOURCE,
    TEMP_DIRS,
    WAF_TMP_DIR,
    InstanceSettings,
    Listener,
    WafProfile,
    canonical_listeners,
    canonical_waf,
    check,
    render_nginx_conf,
    render_waf_base,
    render_waf_rules,
    waf_base_path,
)
from netplane.dataplane.gateway.metrics import EngineMetrics, parse_dump, process_memory
from netplane.dataplane.gateway.observability import AccessLog
from netplane.dataplane.gateway.upstreams import INTERNAL_DIR, NO_UPSTREAMS, TLS_DIR, Upstreams

VHOSTS, BACKENDS, CERTIFICATES = "vhosts", "backends", "certificates"
# Re-pushed in this order after a start, so routes never name a backend that is not there yet.
_KINDS = (BACKENDS, CERTIFICATES, VHOSTS)
_START_TIMEOUT = 10.0
_RELOAD_TIMEOUT = 10.0
_WORKER_TITLE = b"nginx: worker process"


class ControlError(RuntimeError):
    """The control channel refused a push (the running configuration is unchanged)."""

    def __init__(self, status: int, message: str):
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message


class EngineError(RuntimeError):
    """nginx did not start, or refused a reload (the previous configuration keeps serving)."""


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: Path, timeout: float):
        super().__init__("localhost", timeout=timeout)
        self._path = str(path)

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self._path)
        except OSError:
            sock.close()
            raise
        self.sock = sock


def _fallback_certificate() -> tuple[bytes, bytes]:
    """The certificate a TLS listener presents when no pushed certificate covers the name asked for."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "netplane-gateway-fallback")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=3650)).sign(key, hashes.SHA256()))
    return (cert.public_bytes(serialization.Encoding.PEM),
            key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption()))


def certificate_matches_key(cert_pem: str, key_pem: str) -> bool:
    cert = x509.load_pem_x509_certificate(cert_pem.encode())
    key = serialization.load_pem_private_key(key_pem.encode(), None)
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    return bool(cert.public_key().public_bytes(serialization.Encoding.DER, spki)
                == key.public_key().public_bytes(serialization.Encoding.DER, spki))


class Engine:
    """One nginx instance under `settings.prefix`, serving `listeners` and the static `upstreams` (TLS
    profiles towards backends, TLS passthrough, TCP/UDP listeners)."""

    def __init__(self, settings: InstanceSettings, listeners: Iterable[Listener], nginx: str = "nginx",
                 luajit: str = "luajit", upstreams: Upstreams = NO_UPSTREAMS, waf: Iterable[WafProfile] = ()):
        self.settings = settings
        self.listeners = canonical_listeners(listeners)
        self.upstreams = upstreams
        self.waf = canonical_waf(waf)
        self.nginx = nginx
        self.luajit = luajit
        self.reloads = 0
        self._proc: subprocess.Popen[bytes] | None = None
        self._conn: _UnixConnection | None = None
        self._lock = threading.Lock()
        # The last accepted document of each kind, re-pushed when nginx starts again.
        self._docs: dict[str, dict[str, bytes]] = {kind: {} for kind in _KINDS}

    @property
    def prefix(self) -> Path:
        return self.settings.prefix

    @property
    def master_pid(self) -> int | None:
        return self._proc.pid if self._proc is not None and self._proc.poll() is None else None

    def worker_pids(self) -> list[int]:
        """Workers of the master that serve new connections (not those finishing after a reload)."""
        master = self.master_pid
        if master is None:
            return []
        found = []
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            try:
                stat = Path(entry.path, "stat").read_text()
                if int(stat.rsplit(")", 1)[1].split()[1]) != master:
                    continue
                if Path(entry.path, "cmdline").read_bytes().rstrip(b"\0") == _WORKER_TITLE:
                    found.append(int(entry.name))
            except (OSError, ValueError, IndexError):
                continue
        return sorted(found)

    # -- lifecycle -------------------------------------------------------------------------------------

    def _prepare_prefix(self) -> None:
        prefix = self.prefix
        prefix.mkdir(parents=True, exist_ok=True)
        # Workers drop to an unprivileged user and must reach their temp directories.
        prefix.chmod(0o755)
        for sub in ("conf", "logs", "run", "tmp"):
            (prefix / sub).mkdir(exist_ok=True)
        for private in (CONTROL_DIR, INTERNAL_DIR, "conf/" + TLS_DIR):
            (prefix / private).mkdir(exist_ok=True)
            (prefix / private).chmod(0o700)
        lua = prefix / "lua" / LUA_PACKAGE
        shutil.rmtree(lua, ignore_errors=True)
        lua.mkdir(parents=True)
        for source in LUA_SOURCE.glob("*.lua"):
            shutil.copyfile(source, lua / source.name)
        cert, key = prefix / "conf" / FALLBACK_CERT, prefix / "conf" / FALLBACK_KEY
        if not (cert.exists() and key.exists()):
            cert_pem, key_pem = _fallback_certificate()
            key.write_bytes(key_pem)
            key.chmod(0o600)
            cert.write_bytes(cert_pem)

    def _write_tls_files(self, upstreams: Upstreams) -> None:
        # Written before the check (nginx -t loads them); a file's name is its content's digest, so a file the
        # running configuration uses is never rewritten.
        tls_dir = self.prefix / "conf" / TLS_DIR
        for name, text in upstreams.files().items():
            path = tls_dir / name
            if not path.exists():
                tmp = tls_dir / (name + ".tmp")
                tmp.write_text(text)
                tmp.chmod(0o600)
                tmp.replace(path)

    def _prune_tls_files(self) -> None:
        """Removes the files of profiles the running configuration no longer has."""
        keep = set(self.upstreams.files())
        for path in (self.prefix / "conf" / TLS_DIR).iterdir():
            if path.name not in keep:
                path.unlink(missing_ok=True)

    def _open_internal_dir(self) -> None:
        """Gives the internal socket directory to the worker user: workers connect there (stream hops), nobody
        else may. The master binds as whoever started it, so the sockets themselves are created mode 0777."""
        workers = self.worker_pids()
        if not workers:
            return
        info = os.stat(f"/proc/{workers[0]}")
        internal = self.prefix / INTERNAL_DIR
        if (info.st_uid, info.st_gid) != (internal.stat().st_uid, internal.stat().st_gid):
            os.chown(internal, info.st_uid, info.st_gid)

    def _write_waf_rules(self, profiles: tuple[WafProfile, ...]) -> None:
        """The rules files of `profiles` (static text; written before nginx -t reads them)."""
        tmp = self.prefix / WAF_TMP_DIR
        tmp.mkdir(parents=True, exist_ok=True)
        # ModSecurity in the (unprivileged) workers keeps request bodies and collections here.
        tmp.chmod(0o1733)
        crs = any(p.owasp_crs for p in profiles)
        base = waf_base_path(self.prefix, crs)
        base.parent.mkdir(parents=True, exist_ok=True)
        base.write_text(render_waf_base(self.settings, crs))
        for profile in profiles:
            profile.rules_path(self.prefix).write_text(render_waf_rules(profile))

    def _write_files(self, upstreams: Upstreams, waf: tuple[WafProfile, ...]) -> None:
        """What the candidate nginx.conf names besides itself, written before it is checked."""
        self._write_tls_files(upstreams)
        if waf:
            self._write_waf_rules(waf)

    def _write_checked(self, text: str) -> None:
        """Checks `text` as a candidate, then makes it nginx.conf; the checked file is kept as the good one."""
        candidate = self.prefix / CANDIDATE_FILE
        candidate.write_text(text)
        try:
            check(self.prefix, candidate, self.nginx, self.luajit)
        finally:
            candidate.unlink(missing_ok=True)
        for name in (CONF_FILE, GOOD_FILE):
            tmp = self.prefix / (name + ".tmp")
            tmp.write_text(text)
            tmp.replace(self.prefix / name)

    def start(self) -> None:
        if self.master_pid is not None:
            raise EngineError("already running")
        self._prepare_prefix()
        self._write_files(self.upstreams, self.waf)
        self._write_checked(render_nginx_conf(self.settings, self.listeners, self.upstreams, self.waf))
        # A socket left by a killed instance would make bind() fail.
        self.settings.control_socket.unlink(missing_ok=True)
        for kind in TEMP_DIRS:
            (self.prefix / "tmp" / kind).mkdir(exist_ok=True)
        log_offset = self._log_size()
        # With the access log on stdout, nginx writes to ours (a pod's log, for the instance program).
        stdout = None if self.settings.access_log == AccessLog.STDOUT else subprocess.DEVNULL
        self._proc = subprocess.Popen(
            [self.nginx, "-p", f"{self.prefix}/", "-c", str(self.prefix / CONF_FILE), "-e",
             str(self.prefix / ERROR_LOG), "-g", "daemon off;"],
            stdin=subprocess.DEVNULL, stdout=stdout, stderr=subprocess.DEVNULL, start_new_session=True,
            umask=0)
        deadline = time.monotonic() + _START_TIMEOUT
        while True:
            if self._proc.poll() is not None:
                raise EngineError(f"nginx exited ({self._proc.returncode}): {self._log_since(log_offset)}")
            try:
                self.status()
                break
            except (OSError, http.client.HTTPException):
                if time.monotonic() > deadline:
                    self.stop()
                    raise EngineError(f"control socket not answering: {self._log_since(log_offset)}") from None
                time.sleep(0.02)
        self._open_internal_dir()
        self._prune_tls_files()
        for kind in _KINDS:
            for name, body in self._docs[kind].items():
                self._push("PUT", kind, name, body)

    def stop(self, graceful: bool = False, timeout: float = 10.0) -> None:
        """Stops nginx: SIGQUIT lets requests in flight finish, SIGTERM does not; SIGKILL after `timeout`."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGQUIT if graceful else signal.SIGTERM)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        self._proc = None

    def __enter__(self) -> Engine:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- reloads (listener changes only) ---------------------------------------------------------------

    def set_listeners(self, listeners: Iterable[Listener], upstreams: Upstreams | None = None) -> bool:
        """Serves `listeners` (and `upstreams`; None keeps the current ones) from now on; reloads only if the
        rendered nginx.conf differs. Answers whether it reloaded. On any failure the previous configuration
        keeps serving and EngineError, CheckError or ConfigError is raised."""
        wanted = canonical_listeners(listeners)
        wanted_up = self.upstreams if upstreams is None else upstreams
        text = render_nginx_conf(self.settings, wanted, wanted_up, self.waf)
        if text == render_nginx_conf(self.settings, self.listeners, self.upstreams, self.waf):
            return False
        if self.master_pid is None:
            self.listeners, self.upstreams = wanted, wanted_up
            return False
        self._write_files(wanted_up, self.waf)
        self._reload(text)
        self.listeners, self.upstreams = wanted, wanted_up
        self._open_internal_dir()
        self._prune_tls_files()
        return True

    def set_waf_profiles(self, profiles: Iterable[WafProfile]) -> bool:
        """Offers the WAF profiles `profiles` (named locations with ModSecurity) from now on; reloads only if
        the set differs, as set_listeners. A vhost whose waf filter names a profile not offered is refused, so
        callers add profiles before pushing the routes that use them and drop them after."""
        wanted = canonical_waf(profiles)
        if wanted == self.waf:
            return False
        if self.master_pid is None:
            self.waf = wanted
            return False
        self._write_files(self.upstreams, wanted)
        self._reload(render_nginx_conf(self.settings, self.listeners, self.upstreams, wanted))
        self.waf = wanted
        self._open_internal_dir()
        return True

    def _reload(self, text: str) -> None:
        master = self.master_pid
        assert master is not None
        good = (self.prefix / GOOD_FILE).read_text()
        self._write_checked(text)
        old_workers = set(self.worker_pids())
        log_offset = self._log_size()
        os.kill(master, signal.SIGHUP)
        deadline = time.monotonic() + _RELOAD_TIMEOUT
        while time.monotonic() < deadline:
            errors = [line for line in self._log_since(log_offset).splitlines() if "[emerg]" in line]
            if errors:
                self._restore(good)
                raise EngineError("nginx refused the new configuration: " + "; ".join(errors))
            workers = set(self.worker_pids())
            if len(workers) >= self.settings.worker_processes and not workers & old_workers:
                self.reloads += 1
                return
            time.sleep(0.02)
        self._restore(good)
        raise EngineError("reload not seen within the timeout")

    def _restore(self, good: str) -> None:
        for name in (CONF_FILE, GOOD_FILE):
            (self.prefix / name).write_text(good)

    def _log_size(self) -> int:
        try:
            return (self.prefix / ERROR_LOG).stat().st_size
        except OSError:
            return 0

    def _log_since(self, offset: int) -> str:
        try:
            with (self.prefix / ERROR_LOG).open("rb") as f:
                f.seek(offset)
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    # -- the control channel ---------------------------------------------------------------------------

    def _request(self, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
        with self._lock:
            for attempt in (1, 2):
                if self._conn is None:
                    self._conn = _UnixConnection(self.settings.control_socket, timeout=30)
                try:
                    headers = {"Content-Type": "application/json"} if body is not None else {}
                    self._conn.request(method, path, body=body, headers=headers)
                    resp = self._conn.getresponse()
                    return resp.status, resp.read()
                except (OSError, http.client.HTTPException):
                    # A kept-alive connection nginx closed meanwhile: one fresh try (every call is idempotent).
                    self._conn.close()
                    self._conn = None
                    if attempt == 2:
                        raise
        raise AssertionError("unreachable")

    def _push(self, method: str, kind: str, name: str, body: bytes | None = None) -> dict[str, Any]:
        status, raw = self._request(method, f"/v1/{kind}/{urllib.parse.quote(name, safe='')}", body)
        try:
            answer = orjson.loads(raw)
        except orjson.JSONDecodeError:
            answer = {"error": raw.decode(errors="replace")}
        if status != 200:
            raise ControlError(status, str(answer.get("error", answer)))
        return dict(answer)

    def status(self) -> dict[str, Any]:
        status, raw = self._request("GET", "/v1/status")
        if status != 200:
            raise ControlError(status, raw.decode(errors="replace"))
        return dict(orjson.loads(raw))

    def metrics(self) -> EngineMetrics:
        """The request counters (at most a second behind: workers add theirs once a second), the generation,
        the reload count and the memory of the nginx processes."""
        status, raw = self._request("GET", "/v1/metrics")
        if status != 200:
            raise ControlError(status, raw.decode(errors="replace"))
        found = parse_dump(raw.decode(errors="replace"))
        found.reloads = self.reloads
        master = self.master_pid
        found.resident_bytes, found.virtual_bytes, found.processes = process_memory(
            ([master] if master is not None else []) + self.worker_pids())
        return found

    def put(self, kind: str, name: str, doc: Mapping[str, Any] | bytes) -> int:
        """Stores one document; answers the generation that made it visible to every worker."""
        if kind not in _KINDS:
            raise ValueError(f"unknown kind {kind!r}")
        body = doc if isinstance(doc, bytes) else orjson.dumps(doc)
        answer = self._push("PUT", kind, name, body)
        self._docs[kind][name] = body
        return int(answer["generation"])

    def delete(self, kind: str, name: str) -> int:
        if kind not in _KINDS:
            raise ValueError(f"unknown kind {kind!r}")
        answer = self._push("DELETE", kind, name)
        self._docs[kind].pop(name, None)
        return int(answer["generation"])

    def get(self, kind: str, name: str) -> dict[str, Any]:
        status, raw = self._request("GET", f"/v1/{kind}/{urllib.parse.quote(name, safe='')}")
        if status != 200:
            raise ControlError(status, raw.decode(errors="replace"))
        return dict(orjson.loads(raw))

    def put_vhost(self, name: str, doc: Mapping[str, Any]) -> int:
        return self.put(VHOSTS, name, doc)

    def put_backend(self, name: str, endpoints: Iterable[Mapping[str, Any]]) -> int:
        return self.put(BACKENDS, name, {"endpoints": list(endpoints)})

    def put_certificate(self, name: str, hostnames: Iterable[str], cert_pem: str, key_pem: str) -> int:
        if not certificate_matches_key(cert_pem, key_pem):
            raise ControlError(400, "the key does not belong to the certificate")
        return self.put(CERTIFICATES, name, {"hostnames": list(hostnames), "certificate": cert_pem, "key": key_pem})
