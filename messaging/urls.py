from django.urls import path

from messaging import send_views, views

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
]
