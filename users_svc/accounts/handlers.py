"""Reactions of the users service to other services' events. It consumes none yet."""

from common.bus import HandlerRegistry

registry = HandlerRegistry("users")
