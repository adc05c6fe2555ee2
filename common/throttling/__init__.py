"""Throttles that hold behind proxies, across processes and across addresses (docs/security.md)."""
