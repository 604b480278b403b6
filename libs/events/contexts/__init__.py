"""One module per bounded context; importing this package registers them all."""

from libs.events.contexts import (  # noqa: F401
    directory, enrollment, evaluation, insights, matching, notifications, platform, sessions,
)
