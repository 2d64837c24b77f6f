"""Backends behind TLS for end-to-end tests: a throwaway CA and its certificates, the echo server of
gateway_harness.py behind TLS, a gRPC server on raw bytes, and a TLS client that reports the certificate it saw.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import shutil
import socket
import socketserver
import ssl
import threading
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.e2e.gateway_harness import ADDR, EchoServer, unverified_context

CA = tuple["Pem", x509.Certificate, ec.EllipticCurvePrivateKey]


@dataclass(frozen=True)
class Pem:
    cert: str
    key: str


def key_pem(key: ec.EllipticCurvePrivateKey) -> str:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


def make_ca(name: str) -> CA:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=1))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    return Pem(cert.public_bytes(serialization.Encoding.PEM).decode(), key_pem(key)), cert, key


def issue(ca: CA, name: str) -> Pem:
    _, ca_cert, ca_key = ca
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .issuer_name(ca_cert.subject).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=1)).not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    return Pem(cert.public_bytes(serialization.Encoding.PEM).decode(), key_pem(key))


def server_context(pem: Pem, tmp: Path, client_ca: Pem | None = None) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    (tmp / "c.pem").write_text(pem.cert + pem.key)
    context.load_cert_chain(tmp / "c.pem")
    if client_ca is not None:
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(cadata=client_ca.cert)
    return context


class TLSEchoServer(EchoServer):
    """The echo backend behind TLS (the handshake runs in the handler's thread, on its first read). It records
    the SNI name of every handshake (None without SNI) in ``sni_names``."""

    def __init__(self, name: str, context: ssl.SSLContext):
        super().__init__(name)
        self.context = context
        self.sni_names: list[str | None] = []
        context.sni_callback = self._record_sni

    def _record_sni(self, sock: ssl.SSLObject, name: str | None, context: ssl.SSLContext) -> None:
        self.sni_names.append(name)

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, addr = self.socket.accept()
        return self.context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False), addr


def serve(server: socketserver.BaseServer) -> socketserver.BaseServer:
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@contextlib.contextmanager
def serving(servers: Iterable[socketserver.BaseServer], tmp: Path) -> Iterator[None]:
    """Serves ``servers`` until the block ends, then closes them and removes ``tmp`` (their key files)."""
    started = [serve(s) for s in servers]
    try:
        yield
    finally:
        for s in started:
            s.shutdown()
            s.server_close()
        shutil.rmtree(tmp, ignore_errors=True)


def grpc_server(grpc: Any, name: str, credentials: Any = None) -> tuple[Any, int]:
    """A gRPC server with one unary method on raw bytes (no generated code): /test.Echo/Say."""
    def say(request: bytes, context: Any) -> bytes:
        return f"{name}:".encode() + request

    server = grpc.server(ThreadPoolExecutor(max_workers=4))
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(
        "test.Echo", {"Say": grpc.unary_unary_rpc_method_handler(say)}),))
    port = (server.add_secure_port(f"{ADDR}:0", credentials) if credentials is not None
            else server.add_insecure_port(f"{ADDR}:0"))
    server.start()
    return server, port


def tls_exchange(port: int, sni: str) -> tuple[str, bytes]:
    """(common name of the certificate seen, the HTTP answer) for a request with SNI `sni`."""
    context = unverified_context()
    with socket.create_connection((ADDR, port), timeout=10) as raw, \
            context.wrap_socket(raw, server_hostname=sni) as tls:
        der = tls.getpeercert(binary_form=True)
        assert der is not None
        cn = x509.load_der_x509_certificate(der).subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
        tls.sendall(f"GET /pt HTTP/1.1\r\nHost: {sni}\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := tls.recv(65536):
            data += chunk
    return str(cn), data
