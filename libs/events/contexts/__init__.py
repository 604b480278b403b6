"""One module per bounded context; importing this package registers them all."""

from libs.events.contexts import platform  # noqa: F401
