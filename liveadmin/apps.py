from django.apps import AppConfig


class LiveAdminConfig(AppConfig):
    name = "liveadmin"
    verbose_name = "LiveAdmin"

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        from liveadmin.roles import sync_role_permissions

        post_migrate.connect(sync_role_permissions, dispatch_uid="liveadmin-sync-roles")

        from axes.signals import user_locked_out

        from liveadmin.signin import log_lock

        user_locked_out.connect(log_lock, dispatch_uid="liveadmin-log-signin-lock")

        from django.contrib.auth.signals import user_logged_in

        from liveadmin.language import restore_language

        user_logged_in.connect(
            restore_language, dispatch_uid="liveadmin-restore-language"
        )
