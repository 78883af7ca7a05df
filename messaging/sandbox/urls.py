from django.urls import path

from messaging.sandbox import registry, views

app_name = "sandbox"

urlpatterns = [
    path("", views.index, name="index"),
    # Each sandbox provider module serves its own endpoints (messaging/sandbox/registry.py).
    *registry.urlpatterns(),
    path("rooms/", views.rooms, name="rooms"),
    path("rooms/new/", views.room_create, name="room-create"),
    path("apps/mirror/", views.app_mirror, name="app-mirror"),
    path("rooms/<int:pk>/mute/", views.room_mute, name="room-mute"),
    path("rooms/<int:pk>/unmute/<int:member>/", views.room_unmute, name="room-unmute"),
]
