from django.urls import path

from users_svc.accounts import apis

urlpatterns = [
    path("users/", apis.SignUpApi.as_view(), name="sign-up"),
    path("users/me/", apis.MeApi.as_view(), name="me"),
    path("users/me/password/", apis.ChangePasswordApi.as_view(), name="change-password"),
    path("token/", apis.TokenApi.as_view(), name="token"),
    path("token/refresh/", apis.TokenRefreshApi.as_view(), name="token-refresh"),
]
