from django.urls import path

from webhooks import hotpath, views, views_webhook
from webhooks import moderation_views as mod

app_name = "webhooks"

urlpatterns = [
    path(hotpath.WEBHOOK_PATH.lstrip("/"), views_webhook.tencent, name="tencent"),
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
    path("moderation/queue/", mod.review_queue, name="review-queue"),
    path(
        "moderation/queue/<int:pk>/dismiss/", mod.review_dismiss, name="review-dismiss"
    ),
    path(
        "moderation/queue/<int:pk>/add-term/",
        mod.review_add_term,
        name="review-add-term",
    ),
    path("moderation/decisions/<int:pk>/", mod.decision_detail, name="decision-detail"),
    path(
        "moderation/decisions/<int:pk>/mute/", mod.decision_mute, name="decision-mute"
    ),
    path(
        "moderation/senders/<int:app_pk>/<str:sender>/",
        mod.sender_detail,
        name="sender-detail",
    ),
    path(
        "moderation/sends/<int:pk>/decision/",
        mod.send_decision,
        name="send-decision",
    ),
    path("moderation/sanctions/", mod.sanction_list, name="sanction-list"),
    path(
        "moderation/sanctions/<int:pk>/lift/", mod.sanction_lift, name="sanction-lift"
    ),
    path("moderation/escalation/", mod.escalation_list, name="escalation-list"),
    path(
        "moderation/escalation/<int:pk>/delete/",
        mod.escalation_delete,
        name="escalation-delete",
    ),
    path("blocklists/<int:pk>/dryrun/", mod.entry_dryrun, name="entry-dryrun"),
    path(
        "blocklists/<int:pk>/import/dryrun/",
        mod.import_dryrun,
        name="import-dryrun",
    ),
]
