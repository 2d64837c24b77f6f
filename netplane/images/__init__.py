"""Programs that stand in for container images (see netplane.dataplane.runtime.images)."""
