from django.urls import path

from messaging import batch_views, send_views, views

app_name = "messaging"

urlpatterns = [
    path("apps/", views.app_list, name="app-list"),
    path("apps/new/", views.app_create, name="app-create"),
    path("apps/<int:pk>/edit/", views.app_edit, name="app-edit"),
    path("apps/<int:pk>/toggle/", views.app_toggle, name="app-toggle"),
    path("send/", send_views.send, name="send"),
    path("templates/", send_views.template_list, name="template-list"),
    path("templates/new/", send_views.template_create, name="template-create"),
    path("templates/<int:pk>/edit/", send_views.template_edit, name="template-edit"),
    path(
        "templates/<int:pk>/delete/", send_views.template_delete, name="template-delete"
    ),
    path("batches/", batch_views.batch_list, name="batch-list"),
    path(
        "batches/awaiting-approval/",
        batch_views.batch_approvals,
        name="batch-approvals",
    ),
    path("batches/<int:pk>/", batch_views.batch_detail, name="batch-detail"),
    path("batches/<int:pk>/cancel/", batch_views.batch_cancel, name="batch-cancel"),
    path("batches/<int:pk>/pause/", batch_views.batch_pause, name="batch-pause"),
    path("batches/<int:pk>/resume/", batch_views.batch_resume, name="batch-resume"),
    path("batches/<int:pk>/resend/", batch_views.batch_resend, name="batch-resend"),
    path(
        "batches/<int:pk>/resend-unknown/",
        batch_views.batch_resend_unknown,
        name="batch-resend-unknown",
    ),
    path("batches/<int:pk>/approve/", batch_views.batch_approve, name="batch-approve"),
]

urlpatterns += [
    path("audit/", views.audit_list, name="audit"),
    path("audit/export.csv", views.audit_export, name="audit-export"),
    path("audit/<int:pk>/", views.audit_detail, name="audit-detail"),
]
