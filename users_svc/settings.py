"""Settings of the users service (shared defaults in common.settings.base)."""

from common.settings.base import *  # noqa: F403
from common.settings.base import service_settings
from common.settings.env import env_str

_shared = service_settings(
    "users",
    app="users_svc.accounts",
    description="Sign-up, tokens (RS256 JWT) and the caller's account.",
    # Refresh tokens are recorded, so a password change or a deletion can revoke them.
    extra_apps=("rest_framework_simplejwt", "rest_framework_simplejwt.token_blacklist"),
    # Users verifies its own tokens against its database (a deactivated user is refused at once).
    authentication="rest_framework_simplejwt.authentication.JWTAuthentication",
    issuer=True,
)
globals().update(_shared)
AUTH_USER_MODEL = "accounts.User"

if APP_ENV == "test":
    PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

SIMPLE_JWT = {
    **_shared["SIMPLE_JWT"],
    "ROTATE_REFRESH_TOKENS": True,
    "BLACKLIST_AFTER_ROTATION": True,
    # access tokens carry a hash of the password's hash: a new password ends them on users at once
    "CHECK_REVOKE_TOKEN": True,
    "TOKEN_REFRESH_SERIALIZER": "users_svc.accounts.tokens.ReuseRevokingRefreshSerializer",
}
REST_FRAMEWORK = {
    **_shared["REST_FRAMEWORK"],
    "DEFAULT_THROTTLE_RATES": {
        "login": env_str("THROTTLE_LOGIN", "10/min"),
        "signup": env_str("THROTTLE_SIGNUP", "20/min"),
        "password": env_str("THROTTLE_PASSWORD", "10/min"),
        # logins naming one account, from any number of addresses
        "login_account": env_str("THROTTLE_LOGIN_ACCOUNT", "10/min"),
        "profile": env_str("THROTTLE_PROFILE", "30/min"),
    },
}
