"""Reactions of the users service to other services' events. It consumes none yet."""

from common.bus.handlers import HandlerRegistry

registry = HandlerRegistry("users")
