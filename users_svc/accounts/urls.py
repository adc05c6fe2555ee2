from django.urls import path
from rest_framework_simplejwt.views import TokenRefreshView

from users_svc.accounts import apis

urlpatterns = [
    path("users/", apis.SignUpApi.as_view(), name="sign-up"),
    path("token/", apis.TokenApi.as_view(), name="token"),
    path("token/refresh/", TokenRefreshView.as_view(), name="token-refresh"),
]
