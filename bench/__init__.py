"""`make bench`: the event pipeline measured against plain Celery and raw AMQP, in one run."""
