from django.apps import AppConfig


class BusConfig(AppConfig):
    name = "common.bus"
    label = "bus"
    verbose_name = "Event bus"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        """The bus's metrics and its readiness check (the broker), in the process's own; no
        compressed message is ever inflated here."""
        from django.conf import settings

        from common.bus import metrics
        from common.bus.amqp.connection import unreachable_reason
        from common.bus.amqp.wire import refuse_compression
        from common.observability import readiness

        refuse_compression()
        metrics.register(settings.SERVICE_NAME, settings.AMQP_URL)
        readiness.add_check("broker", lambda: unreachable_reason(settings.AMQP_URL, timeout=2))
