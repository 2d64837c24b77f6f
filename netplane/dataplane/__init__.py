"""Node agents and data planes: real Linux networking in network namespaces."""
