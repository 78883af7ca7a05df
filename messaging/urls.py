from django.urls import path

from messaging import views

app_name = "messaging"

urlpatterns = [
    path("apps/", views.app_list, name="app-list"),
    path("apps/new/", views.app_create, name="app-create"),
    path("apps/<int:pk>/edit/", views.app_edit, name="app-edit"),
    path("apps/<int:pk>/toggle/", views.app_toggle, name="app-toggle"),
]

urlpatterns += [
    path("audit/", views.audit_list, name="audit"),
    path("audit/export.csv", views.audit_export, name="audit-export"),
    path("audit/<int:pk>/", views.audit_detail, name="audit-detail"),
]
