from django.urls import path

from messaging.views import apps, audit, batches, send, templates

app_name = "messaging"

urlpatterns = [
    path("apps/", apps.app_list, name="app-list"),
    path("apps/new/", apps.app_create, name="app-create"),
    path("apps/<int:pk>/edit/", apps.app_edit, name="app-edit"),
    path("apps/<int:pk>/toggle/", apps.app_toggle, name="app-toggle"),
    path("apps/<int:pk>/check/", apps.app_check, name="app-check"),
    path("send/", send.send, name="send"),
    path("templates/", templates.template_list, name="template-list"),
    path("templates/new/", templates.template_create, name="template-create"),
    path("templates/<int:pk>/edit/", templates.template_edit, name="template-edit"),
    path(
        "templates/<int:pk>/delete/", templates.template_delete, name="template-delete"
    ),
    path("batches/", batches.batch_list, name="batch-list"),
    path(
        "batches/awaiting-approval/",
        batches.batch_approvals,
        name="batch-approvals",
    ),
    path("batches/<int:pk>/", batches.batch_detail, name="batch-detail"),
    path("batches/<int:pk>/cancel/", batches.batch_cancel, name="batch-cancel"),
    path("batches/<int:pk>/pause/", batches.batch_pause, name="batch-pause"),
    path("batches/<int:pk>/resume/", batches.batch_resume, name="batch-resume"),
    path("batches/<int:pk>/resend/", batches.batch_resend, name="batch-resend"),
    path(
        "batches/<int:pk>/resend-unknown/",
        batches.batch_resend_unknown,
        name="batch-resend-unknown",
    ),
    path("batches/<int:pk>/approve/", batches.batch_approve, name="batch-approve"),
]

urlpatterns += [
    path("audit/", audit.audit_list, name="audit"),
    path("audit/export.csv", audit.audit_export, name="audit-export"),
    path("audit/<int:pk>/", audit.audit_detail, name="audit-detail"),
]
