from django.urls import path

from messaging.sandbox import views

app_name = "sandbox"

urlpatterns = [
    path("v4/<str:service>/<str:command>", views.tencent_api, name="tencent-api"),
    path("zego/", views.zego_api, name="zego-api"),
    # A base URL without the trailing slash must not get a redirect: API clients
    # do not follow them.
    path("zego", views.zego_api),
    path("rooms/", views.rooms, name="rooms"),
    path("rooms/new/", views.room_create, name="room-create"),
    path("rooms/<int:pk>/mute/", views.room_mute, name="room-mute"),
    path("rooms/<int:pk>/unmute/<int:member>/", views.room_unmute, name="room-unmute"),
]
