from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("", include("common.observability.urls")),
    path("api/", include("orders_svc.orders.urls")),
    path("", include("common.docs_urls")),
]

handler404 = "common.api.not_found"
handler500 = "common.api.server_error"
