from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from core import views as core_views

urlpatterns = [
    path("", core_views.dashboard, name="dashboard"),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("projects/", include("projects.urls")),
    path("projects/<slug:slug>/data/connections/", include("connectors.urls")),
    path("projects/<slug:slug>/blueprints/", include("blueprints.urls")),
    path("projects/<slug:slug>/exports/", include("queues.urls")),
    path("projects/<slug:slug>/quality/", include("audits.quality_urls")),
    path("tasks/", include("tasks.urls")),
    path("audits/", include("audits.urls")),
    path("queues/", include("queues.admin_urls")),
    path("activity/", include("activity.urls")),
    path("reports/", include("reports.urls")),
    path("notifications/", include("notifications.urls")),
    path("projects/<slug:slug>/experience/", include("experience.urls")),
    path("workspace/", include("tasks.workspace_urls")),
    path("api/v1/", include("config.api_urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("admin/", admin.site.urls),
]

handler400 = "core.views.bad_request"
handler403 = "core.views.permission_denied"
handler404 = "core.views.page_not_found"
handler500 = "core.views.server_error"
