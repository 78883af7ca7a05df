from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from messaging.models import ProviderApp, SendRecord


@admin.register(ProviderApp)
class ProviderAppAdmin(admin.ModelAdmin):
    list_display = ["name", "provider", "app_id", "region", "enabled"]
    # Secrets are managed on LiveAdmin's own page, where they are write-only.
    exclude = ["secret_key", "webhook_token"]


@admin.register(SendRecord)
class SendRecordAdmin(admin.ModelAdmin):
    """The send log, readable in the admin and nothing more: it is append-only."""

    list_display = ["created_at", "app", "kind", "room_id", "user", "outcome"]
    list_filter = ["outcome", "kind", "app"]
    list_select_related = ["app", "user"]
    # No full-table COUNT on a log of millions of rows.
    show_full_result_count = False
    actions = None

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [field.name for field in self.model._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
