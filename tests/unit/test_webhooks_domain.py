"""Webhooks, the pure part: which events an endpoint gets, what the body
carries, the signature header, the retry schedule, public addresses."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from standardwebhooks import Webhook

import libs.events.contexts  # noqa: F401 - registers every event type
from libs.events.envelope import Envelope
from libs.events.registry import registry
from services.notifications.adapters.webhook_http import UnsafeUrl, check_form, is_public
from services.notifications.domain.webhooks import (
    DISABLE_AFTER,
    MAX_ATTEMPTS,
    RETRY_SCHEDULE,
    body_of,
    new_secret,
    next_due,
    pattern_error,
    signed_headers,
    wants,
)

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def envelope(event_type: str = "binome.matching.PairDeclined.v1", *, tenant: str = "org-a", country: str | None = "FR",
             data: dict | None = None) -> Envelope:
    return Envelope(source="/binome/matching", type=event_type, subject="s", sequence=1, tenant=tenant,
                    country=country, data=data or {})


def test_patterns_exact_unversioned_and_prefix() -> None:
    e = envelope()
    for pattern in ("binome.matching.PairDeclined.v1", "binome.matching.PairDeclined", "binome.matching.*", "*"):
        assert wants(e, organisation="org-a", event_types=[pattern], countries=None), pattern
    for pattern in ("binome.matching.PairDecline", "binome.sessions.*", "binome.matching.PairDeclined.v2"):
        assert not wants(e, organisation="org-a", event_types=[pattern], countries=None), pattern


def test_only_the_organisations_events_and_a_committees_countries() -> None:
    assert not wants(envelope(tenant="org-b"), organisation="org-a", event_types=["*"], countries=None)
    assert wants(envelope(country="FR"), organisation="org-a", event_types=["*"], countries=["FR"])
    assert not wants(envelope(country="DE"), organisation="org-a", event_types=["*"], countries=["FR"])
    assert not wants(envelope(country=None), organisation="org-a", event_types=["*"], countries=["FR"])


def test_notifications_own_events_are_never_pushed() -> None:
    e = envelope("binome.notifications.WebhookDelivered.v1")
    assert not wants(e, organisation="org-a", event_types=["*"], countries=None)


def test_pattern_errors_name_patterns_that_match_nothing() -> None:
    assert pattern_error("binome.sessions.*", registry) is None
    assert pattern_error("binome.nothing.*", registry) is not None
    assert pattern_error("binome.notifications.*", registry) is not None  # never pushed


def test_the_body_withholds_personal_fields() -> None:
    body = body_of(envelope(data={"pair_id": str(uuid.uuid4()), "note": "private", "side": "mentee"}), registry)
    assert "note" not in body["data"] and body["data"]["side"] == "mentee"
    assert body["withheld"] == "note" and body["specversion"] == "1.0"
    plain = body_of(envelope("binome.matching.PairFormed.v1", data={"score": 1.0}), registry)
    assert "withheld" not in plain


def test_one_signature_per_active_secret_each_verifies() -> None:
    old, new = new_secret(), new_secret()
    payload = '{"a": 1}'
    headers = signed_headers([new, old], "msg_1", datetime.now(UTC), payload)
    assert len(headers["webhook-signature"].split(" ")) == 2
    for secret in (old, new):
        assert Webhook(secret).verify(payload, headers) == {"a": 1}


def test_retries_span_about_a_day_then_stop() -> None:
    assert sum(RETRY_SCHEDULE, timedelta()) > DISABLE_AFTER
    assert next_due(1, NOW) == NOW + timedelta(seconds=5)
    assert next_due(MAX_ATTEMPTS - 1, NOW) == NOW + RETRY_SCHEDULE[-1]
    assert next_due(MAX_ATTEMPTS, NOW) is None


@pytest.mark.parametrize(
    ("address", "public"),
    [("8.8.8.8", True), ("2001:4860:4860::8888", True), ("127.0.0.1", False), ("10.0.0.1", False),
     ("172.16.3.4", False), ("192.168.1.1", False), ("169.254.169.254", False), ("100.64.0.1", False),
     ("0.0.0.0", False), ("::1", False), ("fe80::1%eth0", False), ("fc00::1", False), ("::ffff:10.0.0.1", False),
     ("224.0.0.1", False)],
)
def test_public_addresses(address: str, public: bool) -> None:
    assert is_public(address) is public


def test_url_form_outside_and_in_dev_mode() -> None:
    with pytest.raises(UnsafeUrl, match="https"):
        check_form("http://8.8.8.8/x", dev_mode=False)
    assert check_form("http://127.0.0.1:8080/x", dev_mode=True).port == 8080
    with pytest.raises(UnsafeUrl, match="user"):
        check_form("https://a:b@8.8.8.8/", dev_mode=False)
