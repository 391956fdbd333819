"""Top-level URLs: the pages, the admin and the JSON API at /api/v1/."""

from django.contrib import admin
from django.urls import include, path, re_path

from portal.api import api, api_not_found

admin.site.site_header = "NAMD portal administration"
admin.site.site_title = "NAMD portal admin"

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/", api.urls),
    re_path(r"^api/v1/(?P<unmatched>[\s\S]*)\Z", api_not_found),  # [\s\S]: a newline in the path too
    path("", include("frontend.urls")),
]
