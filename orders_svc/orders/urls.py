from django.urls import path

from orders_svc.orders import apis

urlpatterns = [
    path("orders/", apis.OrderListCreateApi.as_view(), name="orders"),
    path("orders/<uuid:pk>/", apis.OrderDetailApi.as_view(), name="order-detail"),
    path("orders/<uuid:pk>/cancel/", apis.OrderCancelApi.as_view(), name="order-cancel"),
]
