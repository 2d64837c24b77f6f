"""netplane's own API kinds: typed models, and the CRDs generated from them.

The models are the single source of truth: the CRD (and so validation, defaults,
OpenAPI for `kubectl explain` and printer columns) is generated from them, at
start-up by `netplane up` and on demand by `netplane manifests` for a real cluster.
Generated manifests are never edited by hand.
"""

from netplane.model.crd import Kind, crd_manifest
from netplane.model.kinds import ALL_KINDS

__all__ = ["ALL_KINDS", "Kind", "crd_manifest"]
