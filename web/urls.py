from django.contrib.auth import views as auth_views
from django.urls import path

from web import views

urlpatterns = [
    path("", views.home, name="home"),
    path("favicon.ico", views.favicon, name="favicon"),
    # Accounts
    path("signup/", views.signup, name="signup"),
    path("login/", views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("account/password/", auth_views.PasswordChangeView.as_view(), name="password_change"),
    path("account/password/done/", auth_views.PasswordChangeDoneView.as_view(), name="password_change_done"),
    path("password-reset/", views.PasswordResetView.as_view(), name="password_reset"),
    path("password-reset/sent/", auth_views.PasswordResetDoneView.as_view(), name="password_reset_done"),
    path(
        "password-reset/<uidb64>/<token>/",
        auth_views.PasswordResetConfirmView.as_view(),
        name="password_reset_confirm",
    ),
    path("password-reset/done/", auth_views.PasswordResetCompleteView.as_view(), name="password_reset_complete"),
    # Chat
    path("chat/", views.chat, name="chat"),
    path("chat/<uuid:conversation_id>/", views.conversation_detail, name="conversation"),
    path("chat/<uuid:conversation_id>/regenerate/", views.conversation_regenerate, name="conversation-regenerate"),
    path("chat/<uuid:conversation_id>/rename/", views.conversation_rename, name="conversation-rename"),
    path("chat/<uuid:conversation_id>/delete/", views.conversation_delete, name="conversation-delete"),
    # History
    path("history/", views.history, name="history"),
    path("history/<uuid:job_id>/", views.job_detail, name="job"),
    path("history/<uuid:job_id>.json", views.job_json, name="job-json"),
    # Keys and usage
    path("keys/", views.api_keys, name="keys"),
    path("keys/<int:key_id>/revoke/", views.api_key_revoke_view, name="key-revoke"),
    path("usage/", views.usage, name="usage"),
    # Playgrounds
    path("playground/embeddings/", views.playground_embeddings, name="playground-embeddings"),
    path("playground/classification/", views.playground_classification, name="playground-classification"),
]
