"""One module per bounded context; importing this package registers them all."""

from libs.events.contexts import directory, enrollment, evaluation, matching, notifications, platform, sessions  # noqa: F401
