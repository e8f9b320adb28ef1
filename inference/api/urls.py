from django.urls import path

from accounts.api import views as key_views
from inference.api import catalog, sse, usage, views
from webhooks import api as webhook_views

app_name = "api"

urlpatterns = [
    path("jobs", views.JobListCreateView.as_view(), name="job-list"),
    path("jobs/<str:job_id>", views.JobDetailView.as_view(), name="job-detail"),
    path("jobs/<str:job_id>/cancel", views.JobCancelView.as_view(), name="job-cancel"),
    path("jobs/<str:job_id>/events", sse.job_events, name="job-events"),
    path("models", catalog.ModelListView.as_view(), name="model-list"),
    path("models/<str:slug>", catalog.ModelDetailView.as_view(), name="model-detail"),
    path("usage", usage.UsageView.as_view(), name="usage"),
    path("keys", key_views.ApiKeyListCreateView.as_view(), name="key-list"),
    path("keys/<str:key_id>", key_views.ApiKeyDetailView.as_view(), name="key-detail"),
    path("keys/<str:key_id>/revoke", key_views.ApiKeyRevokeView.as_view(), name="key-revoke"),
    path("webhooks/secret", webhook_views.SigningSecretView.as_view(), name="webhook-secret"),
    path("webhooks/secret/rotate", webhook_views.SigningSecretRotateView.as_view(), name="webhook-secret-rotate"),
    path("webhooks/deliveries", webhook_views.DeliveryListView.as_view(), name="webhook-delivery-list"),
    path(
        "webhooks/deliveries/<str:delivery_id>",
        webhook_views.DeliveryDetailView.as_view(),
        name="webhook-delivery-detail",
    ),
]
