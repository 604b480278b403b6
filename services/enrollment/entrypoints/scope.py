"""Enrollment routes that are not country-owned (libs/runtime/scope.py says
what this list is for); every other route is in the isolation matrix."""

from __future__ import annotations

from libs.runtime.scope import DEAD_LETTER_ROUTES, PLATFORM_ROUTES, NotCountryOwned

NOT_COUNTRY_OWNED: NotCountryOwned = {
    **PLATFORM_ROUTES,
    **DEAD_LETTER_ROUTES,  # the HR directory's consumer (consumers/directory.py)
    ("POST", "/v1/programmes"): "programmes are organisation configuration; global HR admins only",
    ("GET", "/v1/programmes"): "programmes are organisation configuration that committees read (the catalogue)",
    ("GET", "/v1/programmes/{programme_id}"): "programmes are organisation configuration that committees read",
    ("PATCH", "/v1/programmes/{programme_id}/settings"): "programme configuration; global HR admins only",
    (
        "POST",
        "/v1/programmes/{programme_id}/waves",
    ): "the caller names the new wave's country: 403 outside its own, no object is looked up (test_wave_access)",
}
