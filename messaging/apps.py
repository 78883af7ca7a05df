from typing import Any

from django.apps import AppConfig
from django.conf import settings
from django.core.signals import request_started
from django.utils.translation import gettext_lazy as _


def _start_embedded_scheduler(**kwargs: Any) -> None:
    from messaging import dispatch

    dispatch.start_embedded_scheduler()


class MessagingConfig(AppConfig):
    name = "messaging"
    verbose_name = _("Messaging")

    def ready(self) -> None:
        # Embedded default (no broker): the web process runs scheduled batches and
        # recovery itself, starting with its first request (not in manage.py
        # commands such as migrate, and not under pytest, whose tests drive it).
        if not settings.CELERY_BROKER_URL and settings.EMBEDDED_SCHEDULER:
            request_started.connect(
                _start_embedded_scheduler, dispatch_uid="liveadmin-embedded-scheduler"
            )
