"""The ingress-nginx instance program (image `netplane/ingress-nginx`): Ingresses of one class → the gateway engine."""
