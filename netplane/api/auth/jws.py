"""Compact JSON Web Signatures with ES256 (RFC 7515, RFC 7518 §3.4): what service-account tokens are.

Only the one algorithm this server issues is accepted, so a token cannot talk the verifier into
another one (``alg: none``, or an HMAC keyed with the public key).
"""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature

ALGORITHM = "ES256"
_COORDINATE = 32  # bytes of r and of s on P-256


class InvalidToken(ValueError):
    """Not a token this key signed (malformed, another algorithm or key, or a bad signature)."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except ValueError:
        raise InvalidToken("not base64url") from None


def key_id(key: ec.EllipticCurvePublicKey) -> str:
    """A stable name for the key, so that verifiers can tell which key signed a token."""
    der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return _b64(hashlib.sha256(der).digest())


def sign(claims: dict[str, Any], key: ec.EllipticCurvePrivateKey) -> str:
    header = {"alg": ALGORITHM, "kid": key_id(key.public_key())}
    signing_input = (_b64(json.dumps(header, separators=(",", ":")).encode()) + "."
                     + _b64(json.dumps(claims, separators=(",", ":")).encode()))
    r, s = decode_dss_signature(key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256())))
    return signing_input + "." + _b64(r.to_bytes(_COORDINATE, "big") + s.to_bytes(_COORDINATE, "big"))


def looks_like_jws(token: str) -> bool:
    return token.count(".") == 2


def verify(token: str, key: ec.EllipticCurvePublicKey) -> dict[str, Any]:
    """The claims of a token ``key`` signed; raises InvalidToken otherwise."""
    parts = token.split(".")
    if len(parts) != 3:
        raise InvalidToken("not a compact JWS")
    try:
        header = json.loads(_unb64(parts[0]))
    except ValueError:
        raise InvalidToken("header is not JSON") from None
    if not isinstance(header, dict) or header.get("alg") != ALGORITHM:
        raise InvalidToken("unexpected signing algorithm")
    if header.get("kid") not in (None, key_id(key)):
        raise InvalidToken("signed by another key")
    signature = _unb64(parts[2])
    if len(signature) != 2 * _COORDINATE:
        raise InvalidToken("malformed signature")
    der = encode_dss_signature(int.from_bytes(signature[:_COORDINATE], "big"),
                               int.from_bytes(signature[_COORDINATE:], "big"))
    try:
        key.verify(der, f"{parts[0]}.{parts[1]}".encode(), ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        raise InvalidToken("bad signature") from None
    try:
        claims = json.loads(_unb64(parts[1]))
    except ValueError:
        raise InvalidToken("payload is not JSON") from None
    if not isinstance(claims, dict):
        raise InvalidToken("payload is not an object")
    return claims
