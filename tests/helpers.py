"""Helpers shared by test modules (fixtures live in conftest.py)."""

from __future__ import annotations

import base64
import json
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

import yaml

from tests.conftest import Netplane


class Client:
    """A minimal HTTPS client that trusts the cluster CA and sends the admin token."""

    def __init__(self, instance: Netplane):
        config = yaml.safe_load(instance.kubeconfig.read_text())
        ca = base64.b64decode(config["clusters"][0]["cluster"]["certificate-authority-data"]).decode()
        self.context = ssl.create_default_context(cadata=ca)
        self.server = config["clusters"][0]["cluster"]["server"]
        self.token = config["users"][0]["user"]["token"]

    def request(self, method: str, path: str, body: Any = None, token: str | None = "default",
                content_type: str = "application/json") -> tuple[int, Any]:
        """Send ``body`` JSON-encoded; answer the status and the decoded body (text if not JSON).

        ``token`` is the bearer token: "default" for the admin's, None for none.
        """
        data = json.dumps(body).encode() if body is not None else None
        return self.raw(method, path, data, content_type, token)

    def raw(self, method: str, path: str, data: bytes | None, content_type: str = "application/json",
            token: str | None = "default") -> tuple[int, Any]:
        """Like ``request``, with the body sent exactly as given (not JSON-encoded)."""
        headers = {"Content-Type": content_type, "Accept": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {self.token if token == 'default' else token}"
        req = urllib.request.Request(self.server + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, context=self.context, timeout=30) as resp:
                raw, status = resp.read(), resp.status
        except urllib.error.HTTPError as e:
            raw, status = e.read(), e.code
        try:
            return status, json.loads(raw)
        except ValueError:
            return status, raw.decode()


def eventually(check: Callable[[], object], timeout: float = 30, what: str = "") -> None:
    """Poll ``check`` until it is truthy; fail after ``timeout`` seconds, naming ``what``."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not reached in time: {what}")
        time.sleep(0.25)
