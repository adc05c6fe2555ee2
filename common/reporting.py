"""What Django's debug page and error mails may show. Django hides settings and request variables
named like API, TOKEN, KEY, SECRET, PASS or SIGNATURE; ours also carry credentials inside URLs
(AMQP_URL, <SVC>_DATABASE_URL, CACHE_URL, a cache's LOCATION), and a development server puts the
process environment into every request's META."""

from __future__ import annotations

import re

from django.views.debug import SafeExceptionReporterFilter


class ReporterFilter(SafeExceptionReporterFilter):
    hidden_settings = re.compile(
        "API|TOKEN|KEY|SECRET|PASS|SIGNATURE|HTTP_COOKIE|URL|LOCATION|AUTH", flags=re.IGNORECASE
    )
