"""Shared kernel of the suite: event contracts, the event bus, settings and observability helpers.

Nothing here imports a service; services import from here.
"""
