from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "core"

    def ready(self):
        from django.contrib.auth import get_user_model
        from django.db.backends.signals import connection_created
        from django.db.models.signals import post_save

        from core import (
            auth,  # noqa: F401  registers the OpenAPI extension for our auth
            realtime,
        )

        connection_created.connect(_time_queries, dispatch_uid="core.metrics.time_queries")

        # `user.<id>`: each user's own private topic, readable by that user only.
        realtime.register("user", realtime.user_readers)
        post_save.connect(
            _user_saved, sender=get_user_model(), dispatch_uid="core.realtime.user_saved"
        )


def _time_queries(sender, connection, **kwargs):
    from core import metrics

    if metrics.time_query not in connection.execute_wrappers:
        connection.execute_wrappers.append(metrics.time_query)


def _user_saved(sender, instance, created, update_fields=None, **kwargs):
    # Logins save last_login only: not a change of who may read what.
    if created or update_fields is None or "is_active" in update_fields:
        from core import realtime

        realtime.changed("user", instance.pk)
