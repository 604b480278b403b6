"""Notifications routes that are not country-owned (libs/runtime/scope.py
says what this list is for); every other route is in the isolation matrix."""

from __future__ import annotations

from libs.runtime.scope import DEAD_LETTER_ROUTES, PLATFORM_ROUTES, NotCountryOwned

WEBHOOKS = (
    "a webhook endpoint of the caller's organisation: HR admins manage all, a committee only those limited "
    "to its countries (tests/integration/test_notifications_webhooks.py)"
)

COMMITTEES = (
    "the contacts of the caller's organisation's committee for a country: each organisation has its own; an HR "
    "admin reads and sets any country's, a committee reads only its own countries' (another is a 404) "
    "(tests/integration/test_committee_digest.py)"
)

NOT_COUNTRY_OWNED: NotCountryOwned = {
    **PLATFORM_ROUTES,
    **DEAD_LETTER_ROUTES,  # the service has consumers (consumers/)
    ("GET", "/v1/preferences/me"): "the calling participant's own preferences (its token's subject); participants only",
    ("PUT", "/v1/preferences/me"): "the calling participant's own preferences (its token's subject); participants only",
    # Webhook endpoints are organisation configuration (entrypoints/webhooks.py): an HR admin's
    # reach the whole organisation; a committee sees only those limited to its own countries.
    ("GET", "/v1/committees/{country}/contacts"): COMMITTEES,
    ("PUT", "/v1/committees/{country}/contacts"): COMMITTEES,
    ("POST", "/v1/webhooks"): WEBHOOKS,
    ("GET", "/v1/webhooks"): WEBHOOKS,
    ("GET", "/v1/webhooks/{endpoint_id}"): WEBHOOKS,
    ("PATCH", "/v1/webhooks/{endpoint_id}"): WEBHOOKS,
    ("DELETE", "/v1/webhooks/{endpoint_id}"): WEBHOOKS,
    ("POST", "/v1/webhooks/{endpoint_id}:rotate-secret"): WEBHOOKS,
    ("POST", "/v1/webhooks/{endpoint_id}:ping"): WEBHOOKS,
    ("GET", "/v1/webhooks/{endpoint_id}/deliveries"): WEBHOOKS,
    ("POST", "/v1/webhooks/{endpoint_id}/deliveries:redeliver"): WEBHOOKS,
    ("POST", "/v1/webhooks/{endpoint_id}/deliveries/{delivery_id}:redeliver"): WEBHOOKS,
}
