"""Service-account tokens: issued through the TokenRequest API, accepted as bearer tokens.

A token is a JWT (ES256, `jws.py`) signed with ``DIR/pki/sa.key`` and carrying Kubernetes'
claims: ``iss``, ``sub`` (``system:serviceaccount:NS:NAME``), ``aud``, ``exp``/``iat``/``nbf``,
``jti`` and the private ``kubernetes.io`` claim naming the namespace, the service account and
the object the token is bound to (a pod, with its node; a secret; or a node), each with its uid.

Nothing about a token is stored. Each request checks, besides signature, issuer, audience and
time, that the service account and the bound object still exist with the uids in the token, so
deleting (or re-creating) any of them ends the token at once, as kube-apiserver does. An object
marked for deletion keeps its tokens working for another minute (kube-apiserver's grace), which
lets a terminating pod finish talking to the API.
"""

from __future__ import annotations

import datetime as dt
import os
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from netplane.api.auth import jws
from netplane.api.auth.jws import InvalidToken
from netplane.api.auth.rbac import SERVICE_ACCOUNT_PREFIX, UserInfo
from netplane.api.auth.users import AUTHENTICATED_GROUP

Obj = dict[str, Any]
# (kind, namespace, name) -> the stored object or None. kind: ServiceAccount, Pod, Secret or Node.
Lookup = Callable[[str, str, str], Obj | None]

# kube-apiserver's usual issuer (kubeadm, kind), which is also its default API audience.
ISSUER = "https://kubernetes.default.svc.cluster.local"
API_AUDIENCES: tuple[str, ...] = (ISSUER,)
KEY_FILE = "sa.key"
PRIVATE_CLAIM = "kubernetes.io"
SERVICE_ACCOUNTS_GROUP = "system:serviceaccounts"
DELETION_GRACE = 60.0
EXTRA_PREFIX = "authentication.kubernetes.io/"


def load_or_create_key(pki: Path) -> ec.EllipticCurvePrivateKey:
    """The signing key in ``pki/sa.key``, made on first use (mode 0600 from the start)."""
    path = pki / KEY_FILE
    if not path.exists():
        pki.mkdir(parents=True, exist_ok=True)
        key = ec.generate_private_key(ec.SECP256R1())
        pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass  # another process made it first: use theirs
        else:
            with os.fdopen(fd, "wb") as f:
                f.write(pem)
            return key
    loaded = serialization.load_pem_private_key(path.read_bytes(), None)
    if not isinstance(loaded, ec.EllipticCurvePrivateKey):
        raise ValueError(f"{path} is not an EC private key")
    return loaded


def _ref(obj: Obj) -> dict[str, str]:
    meta = obj.get("metadata") or {}
    return {"name": str(meta.get("name", "")), "uid": str(meta.get("uid", ""))}


def _deleted_long_ago(obj: Obj, now: float) -> bool:
    stamp = (obj.get("metadata") or {}).get("deletionTimestamp")
    if not isinstance(stamp, str):
        return False
    try:
        deleted = dt.datetime.fromisoformat(stamp).timestamp()
    except ValueError:
        return True
    return deleted < now - DELETION_GRACE


class ServiceAccountTokens:
    def __init__(self, key: ec.EllipticCurvePrivateKey, *, issuer: str = ISSUER,
                 audiences: Sequence[str] = API_AUDIENCES, clock: Callable[[], float] = time.time):
        self._key = key
        self._public = key.public_key()
        self.issuer = issuer
        self.audiences = tuple(audiences)
        self.clock = clock

    # --- issuing -----------------------------------------------------------------------------

    def issue(self, service_account: Obj, audiences: Sequence[str], expiration_seconds: int, *,
              pod: Obj | None = None, secret: Obj | None = None, node: Obj | None = None) -> tuple[str, int]:
        """A signed token and its expiry (Unix seconds). With a ``pod``, ``node`` is the pod's node."""
        now = int(self.clock())
        meta = service_account.get("metadata") or {}
        namespace = str(meta.get("namespace", ""))
        private: dict[str, Any] = {"namespace": namespace, "serviceaccount": _ref(service_account)}
        for name, obj in (("pod", pod), ("secret", secret), ("node", node)):
            if obj is not None:
                private[name] = _ref(obj)
        expires = now + expiration_seconds
        claims = {
            "aud": list(audiences), "exp": expires, "iat": now, "iss": self.issuer, "jti": str(uuid.uuid4()),
            PRIVATE_CLAIM: private, "nbf": now,
            "sub": f"{SERVICE_ACCOUNT_PREFIX}{namespace}:{meta.get('name', '')}",
        }
        return jws.sign(claims, self._key), expires

    # --- authenticating ----------------------------------------------------------------------

    def authenticate(self, token: str, lookup: Lookup) -> UserInfo:
        """The service account a token speaks for; raises InvalidToken saying why it does not."""
        claims = jws.verify(token, self._public)
        if claims.get("iss") != self.issuer:
            raise InvalidToken(f"issuer {claims.get('iss')!r} is not this server's")
        audiences = claims.get("aud")
        if isinstance(audiences, str):
            audiences = [audiences]
        if not isinstance(audiences, list) or not set(self.audiences) & {a for a in audiences if isinstance(a, str)}:
            raise InvalidToken("token audiences do not include the API's")
        now = self.clock()
        expires, not_before = claims.get("exp"), claims.get("nbf")
        if not isinstance(expires, int | float) or now >= expires:
            raise InvalidToken("service account token has expired")
        if isinstance(not_before, int | float) and now < not_before:
            raise InvalidToken("service account token is not valid yet")
        private = claims.get(PRIVATE_CLAIM)
        if not isinstance(private, dict):
            raise InvalidToken(f"no {PRIVATE_CLAIM} claim")
        namespace = private.get("namespace")
        account = private.get("serviceaccount")
        if not isinstance(namespace, str) or not isinstance(account, dict) or not namespace:
            raise InvalidToken("no service account in the token")
        username = f"{SERVICE_ACCOUNT_PREFIX}{namespace}:{account.get('name')}"
        if claims.get("sub") != username:
            raise InvalidToken("subject does not match the service account claim")
        self._check_bound("ServiceAccount", namespace, account, lookup, now)
        extra = [("credential-id", (f"JTI={claims.get('jti', '')}",))]
        pod = private.get("pod")
        if pod is not None:
            self._check_bound("Pod", namespace, pod, lookup, now)
            extra += [("pod-name", (str(pod.get("name")),)), ("pod-uid", (str(pod.get("uid")),))]
        if private.get("secret") is not None:
            self._check_bound("Secret", namespace, private["secret"], lookup, now)
        node = private.get("node")
        if node is not None:
            if pod is None:
                # A node-bound token; a pod-bound one only names the pod's node, for information.
                self._check_bound("Node", "", node, lookup, now)
            extra += [("node-name", (str(node.get("name")),)), ("node-uid", (str(node.get("uid")),))]
        return UserInfo(username, str(account.get("uid", "")),
                        (SERVICE_ACCOUNTS_GROUP, f"{SERVICE_ACCOUNTS_GROUP}:{namespace}", AUTHENTICATED_GROUP),
                        tuple(sorted((EXTRA_PREFIX + k, v) for k, v in extra)))

    @staticmethod
    def _check_bound(kind: str, namespace: str, ref: Any, lookup: Lookup, now: float) -> None:
        if not isinstance(ref, dict) or not isinstance(ref.get("name"), str):
            raise InvalidToken(f"malformed {kind} claim")
        where = f"{namespace}/{ref['name']}" if namespace else ref["name"]
        obj = lookup(kind, namespace, ref["name"])
        if obj is None:
            raise InvalidToken(f"{kind} {where} has been deleted")
        uid = (obj.get("metadata") or {}).get("uid")
        if uid != ref.get("uid"):
            raise InvalidToken(f"{kind} {where} UID ({uid}) does not match claim ({ref.get('uid')})")
        if _deleted_long_ago(obj, now):
            raise InvalidToken(f"{kind} {where} is being deleted")
