from django.contrib import admin

from messaging.sandbox.models import (
    MutedMember,
    SandboxApp,
    SandboxMessage,
    SandboxRoom,
)


@admin.register(SandboxApp)
class SandboxAppAdmin(admin.ModelAdmin):
    list_display = ["provider", "app_id", "failure_policy", "broadcast_enabled"]
    # Secrets are never shown, not even to administrators.
    exclude = ["secret", "callback_token"]


@admin.register(SandboxRoom)
class SandboxRoomAdmin(admin.ModelAdmin):
    list_display = ["room_id", "app", "live", "last_msg_seq"]


@admin.register(MutedMember)
class MutedMemberAdmin(admin.ModelAdmin):
    list_display = ["account", "room", "until"]


@admin.register(SandboxMessage)
class SandboxMessageAdmin(admin.ModelAdmin):
    list_display = ["room", "msg_seq", "kind", "sender", "msg_time"]
