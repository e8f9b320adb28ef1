from django.urls import path

from inference.openai_compat import views

app_name = "openai"

urlpatterns = [
    path("chat/completions", views.ChatCompletionsView.as_view(), name="chat-completions"),
    path("completions", views.CompletionsView.as_view(), name="completions"),
    path("embeddings", views.EmbeddingsView.as_view(), name="embeddings"),
    path("models", views.ModelsView.as_view(), name="models"),
    path("models/<path:model>", views.ModelView.as_view(), name="model"),
]
