"""/portal/: the requester portal (included from itsm_project/urls.py)."""

from django.urls import path

from itsm.portal import accounts, satisfaction, views

app_name = "portal"

urlpatterns = [
    path("", views.ticket_list, name="tickets"),
    path("tickets/", views.tickets_redirect),
    path("tickets/new/", views.ticket_new, name="ticket-new"),
    path("tickets/<int:pk>/", views.ticket_detail, name="ticket"),
    path("tickets/<int:pk>/reply/", views.ticket_reply, name="ticket-reply"),
    path("tickets/<int:pk>/status/", views.ticket_move, name="ticket-move"),
    path("tickets/<int:pk>/rating/", satisfaction.ticket_rate_view, name="ticket-rate"),
    path("rate/<str:token>/", satisfaction.rating_link_view, name="rate"),
    path("files/<int:pk>/", views.file_download, name="file"),
    path("sign-in/", accounts.SignInView.as_view(), name="sign-in"),
    path("sign-out/", accounts.SignOutView.as_view(), name="sign-out"),
    path("password-reset/", accounts.PasswordResetView.as_view(), name="password-reset"),
    path("password-reset/sent/", accounts.PasswordResetSentView.as_view(), name="password-reset-sent"),
    path(
        "password-reset/<uidb64>/<token>/",
        accounts.PasswordResetConfirmView.as_view(),
        name="password-reset-confirm",
    ),
    path("password-reset/done/", accounts.PasswordResetDoneView.as_view(), name="password-reset-done"),
]
