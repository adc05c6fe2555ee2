"""From a delivered message to its handler's effect: Celery's worker, consumer and requests,
the handlers, the inbox, retries and dead letters."""
