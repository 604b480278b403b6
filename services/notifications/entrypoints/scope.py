"""Notifications routes that are not country-owned (libs/runtime/scope.py
says what this list is for); every other route is in the isolation matrix."""

from __future__ import annotations

from libs.runtime.scope import DEAD_LETTER_ROUTES, PLATFORM_ROUTES, NotCountryOwned

NOT_COUNTRY_OWNED: NotCountryOwned = {
    **PLATFORM_ROUTES,
    **DEAD_LETTER_ROUTES,
    ("GET", "/v1/preferences/me"): "the calling participant's own preferences (its token's subject); participants only",
    ("PUT", "/v1/preferences/me"): "the calling participant's own preferences (its token's subject); participants only",
}
