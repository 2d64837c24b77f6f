"""Routing: one IR for Ingress, ALB and Gateway API (``ir``), its ordering model (``precedence``), matching
semantics (``matching``), self-validation (``validate``) and the front-door translators (``ingress``)."""
