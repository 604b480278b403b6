"""One message as MIME: text and HTML alternatives, and for session
messages the iCalendar invite both as a ``text/calendar; method=...``
alternative (what Outlook and Gmail act on) and as an ``invite.ics``
attachment (what other readers offer to open)."""

from __future__ import annotations

from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime
from datetime import datetime
from uuid import UUID

from services.notifications.adapters.rendering import Rendered


def message(
    *,
    message_id: UUID,
    sender: str,
    to: Address | list[Address],  # a committee's digest: every address of the committee
    language: str,
    kind: str,
    rendered: Rendered,
    sent_at: datetime,
    invite: bytes | None = None,
    method: str | None = None,
) -> EmailMessage:
    mail = EmailMessage()
    domain = sender.rpartition("@")[2] or "binome"
    mail["Message-ID"] = f"<{message_id}@{domain}>"
    mail["From"] = sender
    mail["To"] = to
    mail["Subject"] = rendered.subject
    mail["Date"] = format_datetime(sent_at)
    mail["X-Binome-Kind"] = kind  # lets mail rules (and tests) sort messages
    mail.set_content(rendered.text)
    mail.add_alternative(rendered.html, subtype="html")
    if invite is not None:
        calendar = invite.decode()
        mail.add_alternative(calendar, subtype="calendar", params={"method": method or "REQUEST"})
        mail.add_attachment(
            invite, maintype="application", subtype="ics", filename="invite.ics", params={"method": method or "REQUEST"}
        )
    # Last: building the parts moves every Content-* header into the first part.
    mail["Content-Language"] = language
    return mail
