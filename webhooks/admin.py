from django.contrib import admin

from webhooks.models import BlocklistChange, Decision


@admin.register(BlocklistChange)
class BlocklistChangeAdmin(admin.ModelAdmin):
    """Read-only: the change history is append-only."""

    list_display = ["created_at", "actor_name", "action", "object_type", "object_id"]
    list_filter = ["action", "object_type"]

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Decision)
class DecisionAdmin(admin.ModelAdmin):
    """Read-only: the decision log is append-only (retention: `purgedecisions`)."""

    list_display = ["created_at", "app", "room_id", "sender", "action", "error_code"]
    list_filter = ["action", "app"]
    readonly_fields = [f.name for f in Decision._meta.fields]

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
