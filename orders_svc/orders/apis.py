"""Thin HTTP adapters over services and selectors; every query is scoped to the caller."""

from __future__ import annotations

from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import generics, status
from rest_framework.request import Request
from rest_framework.response import Response

from common.auth.caller import caller_id
from orders_svc.orders import selectors, services
from orders_svc.orders.models import Order
from orders_svc.orders.serializers import OrderOutput, PlaceOrderInput


class OrderListCreateApi(generics.ListAPIView[Order]):
    serializer_class = OrderOutput

    def get_queryset(self) -> QuerySet[Order]:
        return selectors.orders_of(customer_id=caller_id(self.request))

    @extend_schema(
        request=PlaceOrderInput,
        responses={
            201: OrderOutput,
            400: OpenApiResponse(description="Invalid items, naming the field."),
            409: OpenApiResponse(description="The orders service does not know the customer yet."),
        },
    )
    def post(self, request: Request) -> Response:
        data = PlaceOrderInput(data=request.data)
        data.is_valid(raise_exception=True)
        order = services.place_order(
            customer_id=caller_id(request), items=data.validated_data["items"]
        )
        order = selectors.orders_of(customer_id=order.customer_id).get(pk=order.pk)
        return Response(OrderOutput(order).data, status=status.HTTP_201_CREATED)


class OrderDetailApi(generics.RetrieveAPIView[Order]):
    serializer_class = OrderOutput

    def get_queryset(self) -> QuerySet[Order]:
        return selectors.orders_of(customer_id=caller_id(self.request))
