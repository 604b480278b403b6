"""Where messages go: an SMTP server (aiosmtplib) named by
``BINOME_SMTP_URL``, or, without one, a folder of ``.eml`` files
(``<data dir>/mail/``) that a newcomer can open in any mail reader.

    smtp://host:25                   plain SMTP
    smtp://user:pw@host:587?starttls=true
    smtps://user:pw@host:465         SMTP over TLS
"""

from __future__ import annotations

import os
from email.message import EmailMessage
from pathlib import Path
from typing import Protocol
from urllib.parse import parse_qs, unquote, urlsplit

import aiosmtplib

#: What a try at the mail server may raise and is worth trying again: any
#: SMTP answer other than success (4xx and 5xx) and any connection error.
DeliveryError = (aiosmtplib.SMTPException, OSError)
#: Of those, the ones that say the server was not reached (no use trying the
#: next message now).
UNREACHABLE = (aiosmtplib.SMTPConnectError, aiosmtplib.SMTPTimeoutError, OSError)


class Mailer(Protocol):
    #: Said by ``binome demo`` and the logs: where the messages are.
    where: str

    async def send(self, message: EmailMessage) -> None: ...


class SmtpServer:
    def __init__(self, url: str, timeout_s: float = 30.0) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
            raise ValueError("BINOME_SMTP_URL must be smtp://host:port or smtps://host:port")
        query = parse_qs(parts.query)
        self.hostname = parts.hostname
        self.port = parts.port or (465 if parts.scheme == "smtps" else 25)
        self.use_tls = parts.scheme == "smtps"
        self.start_tls = query.get("starttls", ["false"])[0].lower() in ("1", "true", "yes")
        self.username = unquote(parts.username) if parts.username else None
        self.password = unquote(parts.password) if parts.password else None
        self.timeout_s = timeout_s
        self.where = f"{parts.scheme}://{self.hostname}:{self.port}"  # never the password

    async def send(self, message: EmailMessage) -> None:
        await aiosmtplib.send(
            message,
            hostname=self.hostname,
            port=self.port,
            username=self.username,
            password=self.password,
            use_tls=self.use_tls,
            # None lets aiosmtplib upgrade when the server offers it; True insists.
            start_tls=True if self.start_tls else (False if self.use_tls else None),
            timeout=self.timeout_s,
        )


class MailFolder:
    """One ``<message id>.eml`` file per message, written whole (a reader
    never sees half a file; a second write of the same message replaces it)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.where = str(folder)

    async def send(self, message: EmailMessage) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        name = message["Message-ID"].strip("<>").split("@")[0]
        final = self.folder / f"{name}.eml"
        partial = final.with_suffix(".eml.partial")
        partial.write_bytes(message.as_bytes())
        os.replace(partial, final)


def mailer_from(smtp_url: str | None, data_dir: Path) -> Mailer:
    return SmtpServer(smtp_url) if smtp_url else MailFolder(data_dir / "mail")
