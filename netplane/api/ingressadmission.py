"""Admission for Ingresses of an ingress-nginx class: annotations, paths and duplicate access points (ING-3).

Which Ingresses: those whose class (spec.ingressClassName, the legacy kubernetes.io/ingress.class
annotation, or the IngressClass marked default) is `nginx` or is served by ingress-nginx — an
IngressClass with controller k8s.io/ingress-nginx, or the class of an IngressNginx instance. Other
classes (an ALB's) are left to their own front door. The instance's chart values decide what it
accepts: `allowSnippetAnnotations` and the ConfigMap settings in `controller.config`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from netplane.api.errors import FieldError
from netplane.routing.ingress.admission import review_ingress
from netplane.routing.ingress.settings import ControllerSettings, parse_settings

Obj = dict[str, Any]
INGRESS_NGINX_CONTROLLER = "k8s.io/ingress-nginx"
DEFAULT_CLASS_ANNOTATION = "ingressclass.kubernetes.io/is-default-class"
LEGACY_CLASS_ANNOTATION = "kubernetes.io/ingress.class"


def _class_of_instance(instance: Obj) -> str:
    controller = ((instance.get("spec") or {}).get("controller")) or {}
    return str((controller.get("ingressClassResource") or {}).get("name") or "nginx")


def _default_class(classes: Iterable[Obj]) -> str | None:
    for ingress_class in classes:
        annotations = (ingress_class.get("metadata") or {}).get("annotations") or {}
        if annotations.get(DEFAULT_CLASS_ANNOTATION) == "true":
            return str(ingress_class["metadata"]["name"])
    return None


def review(ingress: Obj, *, namespace_ingresses: Callable[[], Iterable[Obj]], classes: Callable[[], list[Obj]],
           instances: Callable[[], list[Obj]]) -> list[FieldError]:
    """The errors that refuse this Ingress (none when its class is not ingress-nginx's)."""
    spec = ingress.get("spec") or {}
    annotations = (ingress.get("metadata") or {}).get("annotations") or {}
    all_classes = classes()
    default = _default_class(all_classes)
    own = spec.get("ingressClassName") or annotations.get(LEGACY_CLASS_ANNOTATION) or default
    nginx_classes = {"nginx"} | {str(c["metadata"]["name"]) for c in all_classes
                                 if (c.get("spec") or {}).get("controller") == INGRESS_NGINX_CONTROLLER}
    serving = [i for i in instances() if _class_of_instance(i) == own]
    nginx_classes |= {_class_of_instance(i) for i in serving}
    if own not in nginx_classes:
        return []
    controller = ((serving[0].get("spec") or {}).get("controller") or {}) if serving else {}
    base = ControllerSettings(class_name=str(own),
                              allow_snippet_annotations=bool(controller.get("allowSnippetAnnotations")))
    settings = parse_settings(controller.get("config"), base).settings
    return list(review_ingress(ingress, namespace_ingresses(), settings, default).errors)
