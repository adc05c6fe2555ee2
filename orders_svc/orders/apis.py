"""Thin HTTP adapters over services and selectors; every query is scoped to the caller, so another
customer's order is a 404 on every route."""

from __future__ import annotations

from uuid import UUID

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import generics, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from common.auth.caller import caller_id
from common.openapi import errors
from common.throttling.throttles import WriteThrottle
from orders_svc.orders import selectors, services
from orders_svc.orders.models import Order
from orders_svc.orders.serializers import OrderOutput, PlaceOrderInput


@extend_schema_view(
    get=extend_schema(
        summary="Your orders, newest first", responses={200: OrderOutput(many=True), **errors(400, 401, 404)}
    )
)
class OrderListCreateApi(generics.ListAPIView[Order]):
    serializer_class = OrderOutput
    throttle_classes = (WriteThrottle,)
    throttle_scope = "orders"

    def get_queryset(self) -> QuerySet[Order]:
        return selectors.orders_of(customer_id=caller_id(self.request))

    @extend_schema(
        summary="Place an order",
        request=PlaceOrderInput,
        responses={201: OrderOutput, **errors(400, 401, 403, 409, 429)},
        description="409 `customer_unknown` while the orders service has not yet received your "
        "sign-up (retry shortly); 403 `customer_deleted` after the account was deleted.",
    )
    def post(self, request: Request) -> Response:
        data = PlaceOrderInput(data=request.data)
        data.is_valid(raise_exception=True)
        customer = caller_id(request)
        order = services.place_order(customer_id=customer, items=data.validated_data["items"])
        order = selectors.orders_of(customer_id=customer).get(pk=order.pk)
        return Response(OrderOutput(order).data, status=status.HTTP_201_CREATED)


@extend_schema_view(
    get=extend_schema(summary="One of your orders", responses={200: OrderOutput, **errors(401, 404)})
)
class OrderDetailApi(generics.RetrieveAPIView[Order]):
    serializer_class = OrderOutput

    def get_queryset(self) -> QuerySet[Order]:
        return selectors.orders_of(customer_id=caller_id(self.request))


class OrderCancelApi(APIView):
    @extend_schema(
        summary="Cancel one of your orders while it is still placed",
        request=None,
        responses={200: OrderOutput, **errors(401, 404, 409)},
    )
    def post(self, request: Request, pk: UUID) -> Response:
        customer = caller_id(request)
        services.cancel_order(customer_id=customer, order_id=pk, reason=Order.CancelReason.CUSTOMER)
        return Response(OrderOutput(selectors.orders_of(customer_id=customer).get(pk=pk)).data)
