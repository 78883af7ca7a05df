from django.conf import settings
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from liveadmin import language, second_factor_views, user_views, views

urlpatterns = [
    path("", views.home, name="home"),
    path("metrics", views.metrics, name="metrics"),
    path("favicon.ico", views.favicon),
    path("language/", language.choose_language, name="language"),
    path("users/", user_views.user_list, name="user-list"),
    path("users/new/", user_views.user_create, name="user-create"),
    path("users/<int:pk>/", user_views.user_edit, name="user-edit"),
    path("users/<int:pk>/password/", user_views.user_password, name="user-password"),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("accounts/2fa/", second_factor_views.otp_verify, name="otp-verify"),
    path("accounts/2fa/setup/", second_factor_views.otp_setup, name="otp-setup"),
    path(
        "accounts/2fa/recovery-codes/",
        second_factor_views.otp_recovery_codes,
        name="otp-recovery-codes",
    ),
    path("accounts/2fa/off/", second_factor_views.otp_turn_off, name="otp-turn-off"),
    path("", include("messaging.urls")),
    path("", include("webhooks.urls")),
    path("admin/", admin.site.urls),
]

if settings.SANDBOX_ENABLED:
    urlpatterns += [
        path("sandbox/", include("messaging.sandbox.urls")),
    ]

handler400 = "liveadmin.views.bad_request"
handler403 = "liveadmin.views.permission_denied"
handler404 = "liveadmin.views.page_not_found"
handler500 = "liveadmin.views.server_error"
