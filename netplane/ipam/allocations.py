"""Who holds addresses: NIC keys and the allocations persisted as `IP` objects."""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_PROVIDER = "ovn"


@dataclass(frozen=True, order=True)
class NicKey:
    """One interface of one pod: `pod` is `name.namespace`; `provider` is `ovn` for
    the primary interface, or a NetworkAttachmentDefinition provider such as
    `attachnet.default.ovn` for a secondary one. A pod holds one allocation per key.
    """

    pod: str
    provider: str = DEFAULT_PROVIDER

    @property
    def name(self) -> str:
        """The name of the persisted `IP` object (Kube-OVN's OVN port name)."""
        return self.pod if self.provider == DEFAULT_PROVIDER else f"{self.pod}.{self.provider}"

    def __str__(self) -> str:
        if self.provider == DEFAULT_PROVIDER:
            return f"pod {self.pod}"
        return f"pod {self.pod} (provider {self.provider})"


def as_key(key: NicKey | str) -> NicKey:
    """A bare string names the primary interface of that pod."""
    return key if isinstance(key, NicKey) else NicKey(key)


@dataclass(frozen=True)
class Allocation:
    """The addresses one key holds in one subnet -- what an `IP` object persists."""

    key: NicKey
    subnet: str
    v4: str | None = None
    v6: str | None = None

    @property
    def addresses(self) -> tuple[str, ...]:
        return tuple(a for a in (self.v4, self.v6) if a is not None)

    @property
    def ip_address(self) -> str:
        """The `ovn.kubernetes.io/ip_address` annotation value: `v4`, `v6` or `v4,v6`."""
        return ",".join(self.addresses)
