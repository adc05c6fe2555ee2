import os

from django.core.wsgi import get_wsgi_application

from common.auth.keys import require_token_keys

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "users_svc.settings")
application = get_wsgi_application()
require_token_keys(issuer=True)
