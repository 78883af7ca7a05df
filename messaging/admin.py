from django.contrib import admin

from messaging.models import ProviderApp


@admin.register(ProviderApp)
class ProviderAppAdmin(admin.ModelAdmin):
    list_display = ["name", "provider", "app_id", "region", "enabled"]
    # Secrets are managed on LiveAdmin's own page, where they are write-only.
    exclude = ["secret_key", "webhook_token"]
