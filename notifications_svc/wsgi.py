import os

from django.core.wsgi import get_wsgi_application

from common.auth.keys import require_token_keys
from common.observability.views import require_metrics_token

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "notifications_svc.settings")
application = get_wsgi_application()
require_token_keys(issuer=False)
require_metrics_token()
