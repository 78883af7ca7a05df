from django.apps import AppConfig


class WebhooksConfig(AppConfig):
    name = "webhooks"
    verbose_name = "Webhooks and moderation"

    def ready(self) -> None:
        from django.db.models.signals import post_delete, post_save

        from messaging.models import ProviderApp
        from webhooks.signals import app_changed

        # The webhook holds apps (enabled, token, fail policy) in memory too.
        post_save.connect(
            app_changed, sender=ProviderApp, dispatch_uid="webhooks-app-saved"
        )
        post_delete.connect(
            app_changed, sender=ProviderApp, dispatch_uid="webhooks-app-deleted"
        )
