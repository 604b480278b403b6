"""Notifications routes that are not country-owned (libs/runtime/scope.py
says what this list is for); every other route is in the isolation matrix."""

from __future__ import annotations

from libs.runtime.scope import PLATFORM_ROUTES, NotCountryOwned

NOT_COUNTRY_OWNED: NotCountryOwned = {
    **PLATFORM_ROUTES,
    ("GET", "/v1/preferences/me"): "the calling participant's own preferences (its token's subject); participants only",
}
