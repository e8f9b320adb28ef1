from django.contrib import admin
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from inference.api.errors import unknown_url
from ops import views as ops_views

admin.site.site_header = "Djinn administration"
admin.site.site_title = "Djinn admin"
admin.site.index_title = "Models, jobs, users and keys"

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/", include("inference.api.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("v1/", include("inference.openai_compat.urls")),
    path("healthz", ops_views.healthz, name="healthz"),
    path("readyz", ops_views.readyz, name="readyz"),
    path("metrics", ops_views.metrics, name="metrics"),
    path("ops/", ops_views.dashboard, name="ops-dashboard"),
    path("ops/stats.json", ops_views.dashboard_stats, name="ops-stats"),
    path("", include("web.urls")),
    # Last: anything else under the APIs is a JSON 404, never an HTML page.
    re_path(r"^(?:api|v1)(?:/[\s\S]*)?$", unknown_url),
]
