"""ING-3 and ingress-nginx annotation checks at admission, through the real kubectl."""

from __future__ import annotations

import pytest

from tests.conftest import Kubectl

pytestmark = pytest.mark.e2e


def ingress(name: str, ns: str, path: str = "/", host: str = "demo.local", annotations: str = "",
            class_name: str = "nginx", path_type: str = "Prefix") -> str:
    return f"""apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: {name}
  namespace: {ns}
  annotations: {{{annotations}}}
spec:
  ingressClassName: {class_name}
  rules:
  - host: {host}
    http:
      paths:
      - path: {path}
        pathType: {path_type}
        backend:
          service: {{name: nginx-service, port: {{number: 80}}}}
"""


def test_the_guides_ingress_applies(kubectl: Kubectl) -> None:
    kubectl.run("create", "namespace", "k-1", check=False)
    try:
        kubectl("apply", "-f", "tests/e2e/guide_examples/nginx-ingress.yaml")
        assert "demo.local" in kubectl("get", "ingress", "nginx-ingress", "-n", "k-1")
    finally:
        kubectl("delete", "namespace", "k-1", "--wait=false")


def test_a_duplicate_access_point_names_the_ingress_that_holds_it(kubectl: Kubectl, ns: str) -> None:
    kubectl("apply", "-f", "-", input=ingress("first", ns))
    result = kubectl.run("apply", "-f", "-", input=ingress("second", ns), check=False)
    assert result.returncode != 0
    assert 'The Ingress "second" is invalid' in result.stderr
    assert "first" in result.stderr and "demo.local" in result.stderr, result.stderr
    # Another path, another host or another class is no conflict.
    kubectl("apply", "-f", "-", input=ingress("other-path", ns, path="/api"))
    kubectl("apply", "-f", "-", input=ingress("other-host", ns, host="other.local"))
    kubectl("apply", "-f", "-", input=ingress("other-class", ns, class_name="alb-1"))


def test_bad_annotations_are_refused_by_name(kubectl: Kubectl, ns: str) -> None:
    result = kubectl.run("apply", "-f", "-", check=False, input=ingress(
        "bad", ns, annotations="nginx.ingress.kubernetes.io/limit-rps: 'lots'"))
    assert result.returncode != 0
    assert "metadata.annotations[nginx.ingress.kubernetes.io/limit-rps]" in result.stderr, result.stderr
    assert kubectl.run("get", "ingress", "bad", "-n", ns, check=False).returncode != 0


def test_only_header_snippets_are_accepted(kubectl: Kubectl, ns: str) -> None:
    headers = ("nginx.ingress.kubernetes.io/configuration-snippet: "
               "'more_set_headers \"X-Frame-Options: DENY\"; more_clear_headers \"Server\";'")
    kubectl("apply", "-f", "-", input=ingress("headers", ns, annotations=headers))
    injected = ("nginx.ingress.kubernetes.io/configuration-snippet: "
                "'more_set_headers \"X: y\"; } location /x { return 200; '")
    result = kubectl.run("apply", "-f", "-", check=False, input=ingress("evil", ns, path="/evil",
                                                                       annotations=injected))
    assert result.returncode != 0
    assert "configuration-snippet" in result.stderr, result.stderr
