"""Kubernetes Ingress (ingress-nginx flavour) as a front door of the routing IR: annotations and ConfigMap settings
parsed into typed values, translation to the IR, and admission checks (including ING-3 duplicate access points)."""
