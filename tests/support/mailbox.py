"""A real SMTP server in the test process (aiosmtpd), and reading what it
received: the notifications tests' mail server.

    with Mailbox() as mailbox:          # listening on mailbox.url
        ...
        mail = await mailbox.one(to="ana@example.com", kind="session_scheduled")
        calendar = invite_of(mail)      # icalendar.Calendar, parsed back

``stop()`` and ``start()`` take the server down and up again on the same
port (a mail server outage); an address in ``refused`` gets a 550.
"""

from __future__ import annotations

import email
import email.policy
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller
from icalendar import Calendar

from libs.embedded.broker import free_port
from tests.support.kafka import wait_for


@dataclass
class _Collector:
    received: list[EmailMessage] = field(default_factory=list)
    #: Addresses the server answers 550 (a permanent refusal) for.
    refused: set[str] = field(default_factory=set)

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:  # noqa: N802
        if address in self.refused:
            return "550 5.1.1 No such mailbox here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 (aiosmtpd's name)
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        self.received.append(message)  # type: ignore[arg-type]
        return "250 Message accepted for delivery"


class Mailbox:
    def __init__(self) -> None:
        self.port = free_port()
        self.collector = _Collector()
        self.controller: Controller | None = None

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    @property
    def refused(self) -> set[str]:
        return self.collector.refused

    @property
    def received(self) -> list[EmailMessage]:
        return self.collector.received

    def start(self) -> None:
        self.controller = Controller(self.collector, hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    def __enter__(self) -> Mailbox:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def matching(self, *, to: str | None = None, kind: str | None = None) -> list[EmailMessage]:
        return [
            m
            for m in self.received
            if (to is None or to in str(m["To"])) and (kind is None or m["X-Binome-Kind"] == kind)
        ]

    async def one(self, *, to: str, kind: str, timeout: float = 60) -> EmailMessage:
        """The message of ``kind`` to ``to``, once it arrived (exactly one)."""
        await wait_for(lambda: _async(self.matching(to=to, kind=kind)), timeout=timeout)
        found = self.matching(to=to, kind=kind)
        assert len(found) == 1, [m["Subject"] for m in found]
        return found[0]


async def _async(value: Any) -> Any:
    return value


def subject_of(message: EmailMessage) -> str:
    """The Subject as a reader shows it (a header folded before its first word
    parses back with the fold's leading space)."""
    return str(message["Subject"]).strip()


def text_of(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain",))
    assert part is not None
    return part.get_content()


def invite_of(message: EmailMessage) -> Calendar:
    """The calendar part (``text/calendar``), parsed back with icalendar."""
    for part in message.walk():
        if part.get_content_type() == "text/calendar":
            return Calendar.from_ical(part.get_content())
    raise AssertionError(f"no text/calendar part in {message['Subject']!r}")
