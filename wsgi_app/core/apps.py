from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "core"

    def ready(self):
        from core import auth  # noqa: F401  registers the OpenAPI extension for our auth
