"""Messages rendered from the Jinja2 templates under ``templates/``: one
template per kind and language (``<lang>/<kind>.j2``, blocks ``subject``,
``greeting``, ``body`` and optionally ``footer``), laid out as plain text by ``message.j2`` and as
HTML by ``message.html.j2``. Dates and times are formatted with Babel in the
recipient's language and time zone."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from babel.dates import format_date, format_time
from jinja2 import Environment, FileSystemLoader, StrictUndefined

from services.notifications.domain.kinds import Kind

TEMPLATES = Path(__file__).parent / "templates"
_loader = FileSystemLoader(TEMPLATES)
# Plain text is never escaped; the HTML layout always is.
_text = Environment(loader=_loader, autoescape=False, undefined=StrictUndefined, keep_trailing_newline=True)
_html = Environment(loader=_loader, autoescape=True, undefined=StrictUndefined)


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str


def zone(name: str | None) -> ZoneInfo:
    """The recipient's time zone (UTC when the profile names none Binome knows)."""
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def when(moment: datetime, language: str, time_zone: str | None) -> str:
    """A date and time as the recipient reads it, with their time zone's name
    (e.g. "vendredi 12 mars 2027 10:00 (Europe/Paris)")."""
    tz = zone(time_zone)
    local = moment.astimezone(tz)
    return f"{format_date(local, 'full', locale=language)} {format_time(local, 'short', locale=language)} ({tz.key})"


def day(moment: datetime, language: str, time_zone: str | None) -> str:
    return format_date(moment.astimezone(zone(time_zone)), format="long", locale=language)


def render(kind: Kind, language: str, values: dict[str, Any]) -> Rendered:
    """The subject, text and HTML of one message; ``values`` fill the template."""
    values = {**values, "lang": language}
    template = _text.get_template(f"{language}/{kind.value}.j2")
    context = template.new_context(values)

    def block(name: str) -> str:
        return "".join(template.blocks[name](context)).strip()

    body = block("body")
    # The language's footer.j2, unless the kind has its own (a committee's digest).
    footer = block("footer") if "footer" in template.blocks else _text.get_template(f"{language}/footer.j2").render().strip()
    subject = block("subject")
    html = _html.get_template("message.html.j2").render(
        lang=language, subject=subject, greeting=block("greeting"), paragraphs=body.split("\n"), footer=footer
    )
    return Rendered(subject=subject, text=template.render(values), html=html)
