"""Authentication: a client certificate signed by the cluster CA, else a bearer token.

TLS verifies certificates (the serving context requests one and trusts only the cluster CA), so a
certificate that reaches us is genuine: its CN is the user and its O entries are the groups, as in
Kubernetes. The admin token of DIR/pki/admin.token is user ``admin`` in ``netplane:admins`` and
``system:masters``; a JWT is a service-account token (`satokens.py`); other tokens come from the
user database.
"""

from __future__ import annotations

import hmac
import ssl
from typing import Any

from netplane.api.auth import jws
from netplane.api.auth.rbac import UserInfo
from netplane.api.auth.satokens import Lookup, ServiceAccountTokens
from netplane.api.auth.users import ADMINS_GROUP, AUTHENTICATED_GROUP, UserStore

MASTERS_GROUP = "system:masters"
ADMIN = UserInfo("admin", "", (ADMINS_GROUP, MASTERS_GROUP, AUTHENTICATED_GROUP))


class Unauthenticated(Exception):
    """Credentials were sent but are not valid (as opposed to no credentials at all)."""


def user_from_peercert(cert: dict[str, Any]) -> UserInfo:
    """The user a verified certificate (``SSLObject.getpeercert()`` form) names."""
    names: list[str] = []
    groups: list[str] = []
    for rdn in cert.get("subject") or ():
        for key, value in rdn:
            if key == "commonName":
                names.append(value)
            elif key == "organizationName":
                groups.append(value)
    if not names or not names[0]:
        raise Unauthenticated("common name of the client certificate is empty")
    return UserInfo(names[0], "", (*dict.fromkeys(groups), AUTHENTICATED_GROUP))


class Authenticator:
    def __init__(self, admin_token: str, users: UserStore, service_accounts: ServiceAccountTokens,
                 lookup: Lookup):
        self._admin_token = admin_token.encode()
        self.users = users
        self.service_accounts = service_accounts
        self._lookup = lookup

    def authenticate(self, authorization: str, ssl_object: ssl.SSLObject | None) -> UserInfo | None:
        """The user, None when no credentials were sent; raises Unauthenticated for bad ones."""
        cert = ssl_object.getpeercert() if ssl_object is not None else None
        if cert:
            return user_from_peercert(cert)
        if not authorization:
            return None
        scheme, _, token = authorization.partition(" ")
        token = token.strip()
        # Tokens are ASCII; anything else (e.g. latin-1 bytes aiohttp kept as surrogates) is garbage.
        if scheme.lower() != "bearer" or not token or not token.isascii():
            raise Unauthenticated("invalid bearer token")
        if hmac.compare_digest(token.encode(), self._admin_token):
            return ADMIN
        if jws.looks_like_jws(token):
            try:
                return self.service_accounts.authenticate(token, self._lookup)
            except jws.InvalidToken as e:
                raise Unauthenticated(str(e)) from None
        user = self.users.by_token(token)
        if user is None:
            raise Unauthenticated("invalid bearer token")
        return user
