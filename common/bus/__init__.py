"""The event bus: publish events, handle them, and the topology between.

Producers call `publish(...)` inside their transaction; consumers declare handlers with
`HandlerRegistry.handles(...)`. Everything else (wire format, queues, Celery adapters) lives behind
these two calls.
"""
