"""TLS material from Secrets: PEM out of base64 ``data``, and whether a certificate covers a hostname."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from cryptography import x509
from cryptography.x509.oid import NameOID

from netplane.api.validation.access import as_dict, as_list, as_str
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


class CertificateMemory:
    """The last usable version of each TLS Secret, so that an update that breaks its certificate keeps the
    previous one serving (ingress-nginx keeps its SSL store entry when a changed Secret does not parse), while a
    deleted Secret is forgotten (ingress-nginx drops it, and the default certificate takes over)."""

    def __init__(self) -> None:
        self.good: dict[tuple[str, str], Mapping[str, Any]] = {}

    def apply(self, secrets: Sequence[Mapping[str, Any]]) -> tuple[list[Mapping[str, Any]], dict[tuple[str, str], str]]:
        """The Secrets to translate with (broken TLS Secrets replaced by their last usable version) and, for each
        replaced one, why."""
        out: list[Mapping[str, Any]] = []
        kept: dict[tuple[str, str], str] = {}
        present = set()
        for secret in secrets:
            m = as_dict(secret.get("metadata"))
            key = (as_str(m.get("namespace")), as_str(m.get("name")))
            present.add(key)
            if not (secret_value(secret, "tls.crt") or secret_value(secret, "tls.key")):
                out.append(secret)
                continue
            problem = certificate_problem(certificate_from_secret(*key, secret), "*")
            if problem is None:
                self.good[key] = secret
                out.append(secret)
            elif key in self.good:
                kept[key] = f"{problem}; the previous certificate stays in use until the Secret is fixed"
                out.append(self.good[key])
            else:
                out.append(secret)
        for key in [k for k in self.good if k not in present]:
            del self.good[key]
        return out, kept


def secret_users(ingresses: Iterable[Mapping[str, Any]], key: tuple[str, str]) -> list[tuple[str, str]]:
    """(namespace, name) of the Ingresses whose ``spec.tls`` names the Secret ``key``."""
    users = []
    for ing in ingresses:
        m = as_dict(ing.get("metadata"))
        if as_str(m.get("namespace")) != key[0]:
            continue
        entries = as_list(as_dict(ing.get("spec")).get("tls"))
        if any(as_str(as_dict(e).get("secretName")) == key[1] for e in entries):
            users.append((key[0], as_str(m.get("name"))))
    return users
