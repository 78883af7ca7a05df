from django.urls import path

from webhooks import views, views_webhook

app_name = "webhooks"

urlpatterns = [
    path("webhooks/tencent", views_webhook.tencent, name="tencent"),
    path("blocklists/", views.blocklist_list, name="blocklist-list"),
    path("blocklists/new/", views.blocklist_create, name="blocklist-create"),
    path("blocklists/<int:pk>/", views.blocklist_detail, name="blocklist-detail"),
    path("blocklists/<int:pk>/edit/", views.blocklist_edit, name="blocklist-edit"),
    path(
        "blocklists/<int:pk>/delete/", views.blocklist_delete, name="blocklist-delete"
    ),
    path(
        "blocklists/<int:pk>/import/", views.blocklist_import, name="blocklist-import"
    ),
    path(
        "blocklists/<int:pk>/export/", views.blocklist_export, name="blocklist-export"
    ),
    path("blocklists/<int:pk>/entries/", views.entry_create, name="entry-create"),
    path("entries/<int:pk>/", views.entry_row, name="entry-row"),
    path("entries/<int:pk>/edit/", views.entry_edit, name="entry-edit"),
    path("entries/<int:pk>/toggle/", views.entry_toggle, name="entry-toggle"),
    path("entries/<int:pk>/delete/", views.entry_delete, name="entry-delete"),
    path("moderation/try/", views.try_message, name="try"),
    path("moderation/decisions/", views.decision_list, name="decision-list"),
    path("audit/blocklist-changes/export/", views.change_export, name="change-export"),
    path(
        "moderation/decisions/export/",
        views.decision_export,
        name="decision-export",
    ),
    path("audit/blocklist-changes/", views.change_list, name="change-list"),
]
