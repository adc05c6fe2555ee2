from django.apps import AppConfig


class BusConfig(AppConfig):
    name = "common.bus"
    label = "bus"
    verbose_name = "Event bus"
    default_auto_field = "django.db.models.BigAutoField"
