"""Small builders for test events (real registered event types)."""

from __future__ import annotations

from libs.events import Envelope, new_envelope
from libs.events.contexts.platform import ProbeRecorded


def probe(subject: str, value: int = 0, *, tenant: str = "org-test") -> Envelope:
    return new_envelope(
        ProbeRecorded(probe=subject, value=value), service="platform", subject=subject, tenant=tenant
    )
