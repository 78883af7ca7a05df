from django.apps import AppConfig


class LiveAdminConfig(AppConfig):
    name = "liveadmin"
    verbose_name = "LiveAdmin"

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        from liveadmin.roles import sync_role_permissions

        post_migrate.connect(sync_role_permissions, dispatch_uid="liveadmin-sync-roles")
