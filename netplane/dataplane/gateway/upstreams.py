"""The parts of the upstream side that nginx must know when it loads its configuration, and their nginx.conf text.

nginx (1.22, lua-nginx-module 0.10.23) cannot choose TLS settings towards a backend per request from Lua, and
its stream module has no Lua at all here. So three things are static, and changing them reloads:

- upstream TLS profiles: each distinct set of ``proxy_ssl_*`` settings (verification against a CA, a client
  certificate, a fixed name, protocols, ciphers) is a pair of named locations, ``@np_https_<id>`` and
  ``@np_grpcs_<id>``; a backend document names the profile and the router hands the request over with
  ``ngx.exec``. Plain HTTPS, gRPC and gRPC over TLS without a profile are fixed locations and need no reload.
  The PEM material is written by the engine to files named after the profile id, never into nginx.conf;
- TLS passthrough: a ``stream`` server on the TLS port reads the SNI name (``ssl_preread``) and sends the
  connection either to the passthrough backend, untouched, or to the engine's own terminating listener,
  which then listens on an internal unix socket. Both hops carry a PROXY header, so the terminating side
  still sees the client's address;
- TCP and UDP listeners, each to a static set of endpoint addresses.

Everything here is rendered from integers, canonical IP addresses, validated DNS names (checked again
below, whoever built the object) and netplane's own names. The profile id is a digest of the settings and
the PEM material, so equal input renders equal text and unchanged configuration never reloads.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.hazmat.primitives import serialization

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Directory under the prefix for the PEM files of TLS profiles (nginx resolves them against conf/).
TLS_DIR = "upstream-tls"
# Internal unix sockets between the stream hops and the terminating listeners. The engine gives the
# directory to the worker user only: whoever can connect there could claim any client address.
INTERNAL_DIR = "internal"
# "internal/tls-65535.sock", "internal/pt-99999.sock": what the prefix must leave room for in a socket path.
LONGEST_INTERNAL_SOCKET = 24
STREAM_MODULE = "ngx_stream_module.so"
TLS_VERSIONS = ("TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3")
MAX_VERIFY_DEPTH = 100

_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_DNS_NAME = re.compile(rf"(?:\*\.)?{_LABEL}(?:\.{_LABEL})*")
_CIPHERS = re.compile(r"[A-Za-z0-9+:_!-]+")


class UpstreamConfigError(ValueError):
    """An upstream TLS profile, passthrough or L4 listener that cannot be rendered; the message names the field."""


def _dns_name(value: object, where: str, wildcard: bool) -> str:
    if (not isinstance(value, str) or len(value) > 253 or not _DNS_NAME.fullmatch(value)
            or (not wildcard and value.startswith("*."))):
        raise UpstreamConfigError(f"{where}: {value!r} is not a lower-case DNS name")
    return value


def _int(value: object, where: str, low: int, high: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise UpstreamConfigError(f"{where}: must be an integer in {low}..{high}, not {value!r}")
    return value


def _address(value: object, where: str) -> None:
    if not isinstance(value, ipaddress.IPv4Address | ipaddress.IPv6Address):
        raise UpstreamConfigError(f"{where}: must be an IP address object, not {value!r}")


def _address_key(address: IPAddress | None) -> tuple[int, bytes]:
    # IPv4 and IPv6 addresses do not compare with each other.
    return (0, b"") if address is None else (address.version, address.packed)


def _sorted_peers(peers: Iterable[StreamPeer]) -> tuple[StreamPeer, ...]:
    return tuple(sorted(set(peers), key=lambda p: (_address_key(p.address), p.port, p.weight)))


def _socket_address(address: IPAddress | None, port: int) -> str:
    if address is None:
        return str(port)
    return f"[{address.compressed}]:{port}" if address.version == 6 else f"{address.compressed}:{port}"


@dataclass(frozen=True, order=True)
class TLSProfile:
    """TLS towards a backend beyond the plain default (no verification, no SNI, no client certificate).

    ``server_name``: the name verified and, with ``sni``, sent (None: the request's Host). ``ca_pem`` verifies
    the backend (needed by ``verify``); ``certificate_pem``/``key_pem`` are presented as the client certificate.
    """

    verify: bool = False
    verify_depth: int = 1
    server_name: str | None = None
    sni: bool = False
    protocols: tuple[str, ...] = ()
    ciphers: str | None = None
    ca_pem: str = field(default="", repr=False)
    certificate_pem: str = field(default="", repr=False)
    key_pem: str = field(default="", repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "protocols", tuple(sorted(set(self.protocols))))
        _int(self.verify_depth, "verify_depth", 1, MAX_VERIFY_DEPTH)
        if self.server_name is not None:
            _dns_name(self.server_name, "server_name", wildcard=False)
        for version in self.protocols:
            if version not in TLS_VERSIONS:
                raise UpstreamConfigError(f"protocols: {version!r} is not a TLS version")
        if self.ciphers is not None and not _CIPHERS.fullmatch(self.ciphers):
            raise UpstreamConfigError(f"ciphers: {self.ciphers!r} is not an OpenSSL cipher list")
        if self.verify and not self.ca_pem:
            raise UpstreamConfigError("ca: verifying the backend needs a CA certificate (ca.crt)")
        if bool(self.certificate_pem) != bool(self.key_pem):
            raise UpstreamConfigError("certificate: a client certificate needs both tls.crt and tls.key")
        self._check_pem()

    def _check_pem(self) -> None:
        # Checked here, so a bad Secret is refused with its field named, not by nginx -t for the whole reload.
        try:
            if self.ca_pem:
                x509.load_pem_x509_certificates(self.ca_pem.encode())
        except ValueError as e:
            raise UpstreamConfigError(f"ca: cannot be parsed: {e}") from None
        if not self.certificate_pem:
            return
        try:
            cert = x509.load_pem_x509_certificates(self.certificate_pem.encode())[0]
        except ValueError as e:
            raise UpstreamConfigError(f"certificate: cannot be parsed: {e}") from None
        try:
            key = serialization.load_pem_private_key(self.key_pem.encode(), None)
        except (ValueError, TypeError) as e:
            raise UpstreamConfigError(f"key: cannot be parsed: {e}") from None
        spki = serialization.PublicFormat.SubjectPublicKeyInfo
        if (cert.public_key().public_bytes(serialization.Encoding.DER, spki)
                != key.public_key().public_bytes(serialization.Encoding.DER, spki)):
            raise UpstreamConfigError("key: does not belong to the certificate")

    @property
    def id(self) -> str:
        """A digest of everything the profile is: a changed CA or key is a new profile (and a reload)."""
        h = hashlib.sha256()
        for part in (str(self.verify), str(self.verify_depth), self.server_name or "", str(self.sni),
                     " ".join(self.protocols), self.ciphers or "", self.ca_pem, self.certificate_pem, self.key_pem):
            h.update(part.encode() + b"\0")
        return h.hexdigest()[:20]

    def files(self) -> dict[str, str]:
        """File name (under conf/upstream-tls) → PEM text, for the engine to write."""
        out = {}
        for suffix, text in (("ca", self.ca_pem), ("crt", self.certificate_pem), ("key", self.key_pem)):
            if text:
                out[f"{self.id}.{suffix}"] = text
        return out

    def directives(self, module: str) -> list[str]:
        """``proxy_ssl_*`` or ``grpc_ssl_*`` lines for this profile."""
        d = f"{module}_ssl"
        lines = [f"{d}_name {self.server_name or '$host'};",
                 f"{d}_server_name {'on' if self.sni else 'off'};"]
        if self.verify:
            lines += [f"{d}_verify on;", f"{d}_verify_depth {self.verify_depth};",
                      f"{d}_trusted_certificate {TLS_DIR}/{self.id}.ca;"]
        if self.certificate_pem:
            lines += [f"{d}_certificate {TLS_DIR}/{self.id}.crt;", f"{d}_certificate_key {TLS_DIR}/{self.id}.key;"]
        if self.protocols:
            lines.append(f"{d}_protocols {' '.join(self.protocols)};")
        if self.ciphers:
            lines.append(f"{d}_ciphers {self.ciphers};")
        return lines


@dataclass(frozen=True)
class StreamPeer:
    address: IPAddress
    port: int
    weight: int = 1

    def __post_init__(self) -> None:
        _address(self.address, "peer address")
        _int(self.port, "peer port", 1, 65535)
        _int(self.weight, "peer weight", 1, 10000)

    def server_line(self) -> str:
        weight = f" weight={self.weight}" if self.weight != 1 else ""
        return f"server {_socket_address(self.address, self.port)}{weight};"


@dataclass(frozen=True)
class Passthrough:
    """TLS connections on ``port`` whose SNI is one of ``hostnames`` go to ``peers`` without termination.
    ``one_label``: ``*.example.com`` covers one label (Ingress), otherwise any number (Gateway API)."""

    port: int
    hostnames: tuple[str, ...]
    peers: tuple[StreamPeer, ...] = ()
    address: IPAddress | None = None
    one_label: bool = True
    proxy_protocol: bool = False

    def __post_init__(self) -> None:
        _int(self.port, "passthrough port", 1, 65535)
        if self.address is not None:
            _address(self.address, "passthrough address")
        object.__setattr__(self, "hostnames", tuple(sorted(set(self.hostnames))))
        object.__setattr__(self, "peers", _sorted_peers(self.peers))
        if not self.hostnames:
            raise UpstreamConfigError("hostnames: a passthrough needs SNI names")
        for name in self.hostnames:
            _dns_name(name, "hostnames", wildcard=True)


@dataclass(frozen=True)
class L4Listener:
    """A TCP or UDP port whose connections (datagrams) go to ``peers``."""

    port: int
    udp: bool = False
    address: IPAddress | None = None
    peers: tuple[StreamPeer, ...] = ()
    proxy_protocol: bool = False

    def __post_init__(self) -> None:
        _int(self.port, "L4 listener port", 1, 65535)
        if self.address is not None:
            _address(self.address, "L4 listener address")
        object.__setattr__(self, "peers", _sorted_peers(self.peers))
        if self.udp and self.proxy_protocol:
            raise UpstreamConfigError("proxy_protocol: not for UDP")


@dataclass(frozen=True)
class Upstreams:
    """Everything of the upstream side that lives in nginx.conf; the default is none of it."""

    tls_profiles: tuple[TLSProfile, ...] = ()
    passthrough: tuple[Passthrough, ...] = ()
    l4: tuple[L4Listener, ...] = ()

    def __post_init__(self) -> None:
        # Canonical order and no duplicates: equal meaning renders equal text.
        object.__setattr__(self, "tls_profiles", tuple(sorted(set(self.tls_profiles), key=lambda p: p.id)))
        object.__setattr__(self, "passthrough", tuple(sorted(set(self.passthrough), key=lambda x: (
            x.port, x.hostnames, _address_key(x.address), x.one_label, x.proxy_protocol,
            [(_address_key(p.address), p.port, p.weight) for p in x.peers]))))
        object.__setattr__(self, "l4", tuple(sorted(set(self.l4), key=lambda x: (
            x.port, x.udp, _address_key(x.address), x.proxy_protocol,
            [(_address_key(p.address), p.port, p.weight) for p in x.peers]))))
        seen: dict[str, int] = {}
        for pt in self.passthrough:
            for name in pt.hostnames:
                if seen.setdefault(f"{pt.port}/{name}", id(pt)) != id(pt):
                    raise UpstreamConfigError(f"hostnames: {name} is passed through twice on port {pt.port}")
        sockets: set[tuple[int, bool, IPAddress | None]] = set()
        for lst in self.l4:
            key = (lst.port, lst.udp, lst.address)
            if key in sockets or ((lst.port, lst.udp, None) in sockets and lst.address is not None):
                raise UpstreamConfigError(f"two L4 listeners on port {lst.port}")
            sockets.add(key)

    @property
    def uses_stream(self) -> bool:
        return bool(self.passthrough or self.l4)

    def passthrough_ports(self) -> set[int]:
        return {pt.port for pt in self.passthrough}

    def tcp_ports(self) -> set[int]:
        """Ports the stream module binds with TCP (for conflicts with the HTTP listeners)."""
        return {lst.port for lst in self.l4 if not lst.udp}

    def files(self) -> dict[str, str]:
        return {name: text for p in self.tls_profiles for name, text in p.files().items()}


NO_UPSTREAMS = Upstreams()


# -- nginx.conf text ---------------------------------------------------------------------------------------------

# (name of the location and its upstream, module, scheme) of each backend protocol beyond plain HTTP.
_PROTOCOLS = (("https", "proxy", "https"), ("grpc", "grpc", "grpc"), ("grpcs", "grpc", "grpcs"))


def _pass(module: str, scheme: str, upstream: str) -> str:
    return f"{module}_pass {scheme}://{upstream};"


def named_locations(upstreams: Upstreams) -> list[str]:
    """The hand-off locations of every server block: one per backend protocol, one per protocol and profile.
    Each has the header filter: routes to these backends may retry or filter response headers."""
    out: list[str] = []

    def location(name: str, module: str, scheme: str, extra: Iterable[str]) -> None:
        out.extend([f"        location @np_{name} {{",
                    f"            {_pass(module, scheme, 'np_' + name)}",
                    *(f"            {line}" for line in extra),
                    "            header_filter_by_lua_block { np_router.header_filter() }",
                    "        }"])

    plain = TLSProfile()
    for name, module, scheme in _PROTOCOLS:
        location(name, module, scheme, plain.directives(module) if scheme != "grpc" else ())
    for profile in upstreams.tls_profiles:
        for name, module, scheme in _PROTOCOLS:
            if scheme != "grpc":
                location(f"{name}_{profile.id}", module, scheme, profile.directives(module))
    return out


def balancer_upstreams(upstreams: Upstreams, keepalive: int) -> list[str]:
    """One upstream per hand-off location, all balanced by the engine's Lua. Separate upstreams keep separate
    keepalive pools: a connection set up under one protocol or TLS profile is never reused under another."""
    names = [name for name, _, _ in _PROTOCOLS]
    names += [f"{name}_{p.id}" for p in upstreams.tls_profiles for name, _, scheme in _PROTOCOLS if scheme != "grpc"]
    out: list[str] = []
    for name in names:
        out += [f"    upstream np_{name} {{",
                "        server 0.0.0.1;",
                "        balancer_by_lua_block { np_balancer.balance() }",
                f"        keepalive {keepalive};",
                "        keepalive_requests 10000;",
                "        keepalive_timeout 60s;",
                "    }"]
    return out


def lua_init(upstreams: Upstreams) -> str:
    """Tells the Lua which profiles this nginx.conf has, so a backend naming another one is refused."""
    ids = ", ".join(f'"{p.id}"' for p in upstreams.tls_profiles)
    return f"np_balancer.set_tls_profiles({{{ids}}})"


def internal_socket(prefix: str, name: str) -> str:
    return f"unix:{prefix}/{INTERNAL_DIR}/{name}.sock"


def terminating_listen(prefix: str, port: int, flags: str) -> list[str]:
    """The listen lines of a TLS listener whose port the stream module holds for passthrough: it takes the
    connections ssl_preread did not pass through, with the client's address from the PROXY header."""
    return [f"        listen {internal_socket(prefix, f'tls-{port}')}{flags} proxy_protocol;",
            "        set_real_ip_from unix:;",
            "        real_ip_header proxy_protocol;"]


def _sni_map_key(name: str, one_label: bool) -> str:
    if name.startswith("*.") and one_label:
        # Exactly one label in front of the suffix (nginx's "*.suffix" covers any number); the dots of a
        # validated name are its only regex characters. Case-insensitive, as the map's hostname keys are.
        return "~*^[^.]+" + name[1:].replace(".", "\\.") + "$"
    return name


def stream_block(prefix: str, upstreams: Upstreams, tls_ports: dict[int, IPAddress | None]) -> list[str]:
    """The ``stream {}`` block, or nothing. ``tls_ports``: the engine's terminating listeners by port (the
    fallback for SNI names that are not passed through)."""
    if not upstreams.uses_stream:
        return []
    out = ["stream {",
           "    upstream np_refuse { server 127.0.0.1:1 down; }"]
    ports: dict[int, list[tuple[int, Passthrough]]] = {}
    for i, pt in enumerate(upstreams.passthrough):
        ports.setdefault(pt.port, []).append((i, pt))
    for port, items in sorted(ports.items()):
        fallback = f"np_tls_{port}" if port in tls_ports else "np_refuse"
        if port in tls_ports:
            out += [f"    upstream np_tls_{port} {{ server {internal_socket(prefix, f'tls-{port}')}; }}"]
        out += [f"    map $ssl_preread_server_name $np_sni_{port} {{", "        hostnames;",
                f"        default {fallback};"]
        out += [f"        {_sni_map_key(name, pt.one_label)} np_pt_{i};" for i, pt in items for name in pt.hostnames]
        out.append("    }")
        address = tls_ports.get(port) or items[0][1].address
        out += ["    server {",
                f"        listen {_socket_address(address, port)};",
                "        ssl_preread on;",
                "        proxy_protocol on;",
                f"        proxy_pass $np_sni_{port};",
                "    }"]
        for i, pt in items:
            out += [f"    upstream np_pt_{i} {{ server {internal_socket(prefix, f'pt-{i}')}; }}",
                    *_peer_upstream(f"np_pt_{i}_peers", pt.peers),
                    "    server {",
                    f"        listen {internal_socket(prefix, f'pt-{i}')} proxy_protocol;",
                    "        set_real_ip_from unix:;",
                    f"        proxy_protocol {'on' if pt.proxy_protocol else 'off'};",
                    f"        proxy_pass np_pt_{i}_peers;",
                    "    }"]
    for lst in upstreams.l4:
        name = f"np_l4_{lst.port}_{'udp' if lst.udp else 'tcp'}_{_address_tag(lst.address)}"
        out += [*_peer_upstream(name, lst.peers),
                "    server {",
                f"        listen {_socket_address(lst.address, lst.port)}{' udp' if lst.udp else ''};",
                *([f"        proxy_protocol {'on' if lst.proxy_protocol else 'off'};"] if not lst.udp else
                  []),
                f"        proxy_pass {name};",
                "    }"]
    out.append("}")
    return out


def _address_tag(address: IPAddress | None) -> str:
    return "any" if address is None else address.exploded.replace(":", "_").replace(".", "_")


def _peer_upstream(name: str, peers: tuple[StreamPeer, ...]) -> list[str]:
    # No endpoints: a server marked down, so connections are closed instead of the file failing its check.
    servers = [p.server_line() for p in peers] or ["server 127.0.0.1:1 down;"]
    return [f"    upstream {name} {{", *(f"        {s}" for s in servers), "    }"]
