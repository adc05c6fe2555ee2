from django.apps import AppConfig


class ThrottlingConfig(AppConfig):
    name = "common.throttling"
    label = "throttling"
    verbose_name = "Throttling"
