"""ConfigMap and Secret: key formats, size limits, typed-secret keys, immutability."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from netplane.api.errors import FieldError, forbidden, invalid, required, too_long

from . import formats
from .access import as_dict, as_str
from .meta import immutable

MAX_SIZE = 1024 * 1024
_IMMUTABLE = "field is immutable when `immutable` is set"


def _decoded(value: Any) -> bytes:
    try:
        return base64.b64decode(as_str(value), validate=True)
    except (binascii.Error, ValueError):
        return as_str(value).encode()


def validate_config_map(obj: dict[str, Any]) -> list[FieldError]:
    errs: list[FieldError] = []
    data, binary = as_dict(obj.get("data")), as_dict(obj.get("binaryData"))
    total = 0
    for key, value in data.items():
        errs += [invalid(f"data[{key}]", key, m) for m in formats.config_map_key(key)]
        if key in binary:
            errs.append(invalid(f"data[{key}]", key, "duplicate of key present in binaryData"))
        total += len(as_str(value).encode())
    for key, value in binary.items():
        errs += [invalid(f"binaryData[{key}]", key, m) for m in formats.config_map_key(key)]
        total += len(_decoded(value))
    if total > MAX_SIZE:
        errs.append(too_long("", "", MAX_SIZE))
    return errs


def _immutable_contents(obj: dict[str, Any], old: dict[str, Any], keys: tuple[str, ...]) -> list[FieldError]:
    if old.get("immutable") is not True:
        return []
    errs: list[FieldError] = []
    if obj.get("immutable") is not True:
        errs.append(forbidden("immutable", _IMMUTABLE))
    for key in keys:
        if (obj.get(key) or None) != (old.get(key) or None):
            errs.append(forbidden(key, _IMMUTABLE))
    return errs


def validate_config_map_update(obj: dict[str, Any], old: dict[str, Any]) -> list[FieldError]:
    return _immutable_contents(obj, old, ("data", "binaryData"))


_REQUIRED_SECRET_KEYS = {
    "kubernetes.io/dockercfg": (".dockercfg",),
    "kubernetes.io/dockerconfigjson": (".dockerconfigjson",),
    "kubernetes.io/ssh-auth": ("ssh-privatekey",),
    "kubernetes.io/tls": ("tls.crt", "tls.key"),
}


def validate_secret(obj: dict[str, Any]) -> list[FieldError]:
    errs: list[FieldError] = []
    data = as_dict(obj.get("data"))
    total = 0
    for key, value in data.items():
        errs += [invalid(f"data[{key}]", key, m) for m in formats.config_map_key(key)]
        total += len(_decoded(value))
    if total > MAX_SIZE:
        errs.append(too_long("data", "", MAX_SIZE))
    kind = as_str(obj.get("type"))
    annotations = as_dict(as_dict(obj.get("metadata")).get("annotations"))
    if kind == "kubernetes.io/service-account-token":
        if not as_str(annotations.get("kubernetes.io/service-account.name")):
            errs.append(required("metadata.annotations[kubernetes.io/service-account.name]"))
    elif kind == "kubernetes.io/basic-auth":
        if "username" not in data and "password" not in data:
            errs += [required("data[username]"), required("data[password]")]
    elif kind in ("kubernetes.io/dockercfg", "kubernetes.io/dockerconfigjson"):
        key = _REQUIRED_SECRET_KEYS[kind][0]
        if key not in data:
            errs.append(required(f"data[{key}]"))
        else:
            try:
                json.loads(_decoded(data[key]))
            except ValueError as exc:
                errs.append(invalid(f"data[{key}]", "<secret contents redacted>", str(exc)))
    elif kind == "kubernetes.io/ssh-auth":
        if not _decoded(data.get("ssh-privatekey")):
            errs.append(required("data[ssh-privatekey]"))
    elif kind == "kubernetes.io/tls":
        errs += [required(f"data[{key}]") for key in ("tls.crt", "tls.key") if key not in data]
    return errs


def validate_secret_update(obj: dict[str, Any], old: dict[str, Any]) -> list[FieldError]:
    errs = immutable("type", as_str(obj.get("type")), as_str(old.get("type")))
    return errs + _immutable_contents(obj, old, ("data",))
