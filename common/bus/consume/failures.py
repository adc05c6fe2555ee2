"""What a handler failure means for its message: retry later on the broker, or park it for good.
Decided in the pool process, carried out by the main process (`request.EventRequest`)."""

from __future__ import annotations

import random

from celery.exceptions import SoftTimeLimitExceeded
from django.db import InterfaceError, OperationalError

# Worth another attempt, for every handler: the database going away or a lock timeout, and a soft
# time limit (a lock wait, a slow dependency, or a limit billiard delivered late: its timer runs on
# while a reconnecting worker has not yet read a finished job's result).
DEFAULT_TRANSIENT: tuple[type[BaseException], ...] = (OperationalError, InterfaceError, SoftTimeLimitExceeded)


class RetryLater(Exception):
    """Schedule this message again in `delay` seconds (on the broker), after `attempt` attempts."""

    def __init__(self, delay: int, attempt: int, cause: str) -> None:
        super().__init__(delay, attempt, cause)
        self.delay, self.attempt, self.cause = delay, attempt, cause

    def __str__(self) -> str:
        return f"attempt {self.attempt} failed ({self.cause}); retrying in {self.delay}s"


class Park(Exception):
    """Never try this message again as it is: send it to the dead-letter queue now."""

    def __init__(self, kind: str, cause: str, exception_type: str = "") -> None:
        super().__init__(kind, cause, exception_type)
        self.kind, self.cause, self.exception_type = kind, cause, exception_type or kind

    def __str__(self) -> str:
        return self.cause


def qualified_name(exc: BaseException) -> str:
    return f"{type(exc).__module__}.{type(exc).__qualname__}"


def is_transient(exc: BaseException, declared: tuple[type[BaseException], ...]) -> bool:
    return isinstance(exc, DEFAULT_TRANSIENT + declared)


def retry_delay(attempt: int, *, base: float, maximum: float, rng: random.Random | None = None) -> int:
    """Whole seconds before attempt `attempt + 1`: exponential plus up to 50% jitter, which spreads
    retries of messages that failed together without ever waiting less than the last retry."""
    step = int(min(base * 2 ** (attempt - 1), maximum))
    jitter = (rng or random).randint(0, step // 2)  # whole seconds: the broker delays by seconds
    return max(1, min(step + jitter, int(maximum)))
