"""TLS material from Secrets: PEM out of base64 ``data``, and whether a certificate covers a hostname."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Any

from cryptography import x509
from cryptography.x509.oid import NameOID

from netplane.api.validation.access import as_dict, as_str
from netplane.routing.ir import Certificate


def secret_value(secret: Mapping[str, Any], key: str) -> str:
    """A Secret's ``data[key]`` decoded (``stringData`` when only that is present); empty if absent or not text."""
    raw = as_dict(secret.get("data")).get(key)
    if isinstance(raw, str):
        try:
            return base64.b64decode(raw, validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return ""
    return as_str(as_dict(secret.get("stringData")).get(key))


def certificate_from_secret(namespace: str, name: str, secret: Mapping[str, Any]) -> Certificate:
    return Certificate(id=f"{namespace}/{name}", namespace=namespace, name=name,
                       certificate_pem=secret_value(secret, "tls.crt"), private_key_pem=secret_value(secret, "tls.key"),
                       ca_pem=secret_value(secret, "ca.crt"))


def _dns_names(cert: x509.Certificate) -> list[str]:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        return [n.lower() for n in san.get_values_for_type(x509.DNSName)]
    except x509.ExtensionNotFound:
        return [str(a.value).lower() for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]


def _name_covers(name: str, host: str) -> bool:
    # RFC 6125: a certificate wildcard stands for exactly one label; a wildcard host needs the same wildcard.
    if name == host:
        return True
    if name.startswith("*.") and not host.startswith("*."):
        label, _, rest = host.partition(".")
        return bool(label) and rest == name[2:]
    return False


def certificate_problem(cert: Certificate, host: str) -> str | None:
    """Why ``cert`` cannot serve ``host`` (None when it can)."""
    if not cert.certificate_pem or not cert.private_key_pem:
        return f"secret {cert.id} has no tls.crt and tls.key"
    try:
        parsed = x509.load_pem_x509_certificate(cert.certificate_pem.encode())
    except ValueError:
        return f"secret {cert.id} has no valid PEM certificate in tls.crt"
    if host != "*" and not any(_name_covers(n, host) for n in _dns_names(parsed)):
        return f"the certificate in secret {cert.id} is not valid for {host}"
    return None
