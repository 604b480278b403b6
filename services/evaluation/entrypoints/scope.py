"""Evaluation routes that are not country-owned (libs/runtime/scope.py says
what this list is for); every other route is in the isolation matrix."""

from __future__ import annotations

from libs.runtime.scope import DEAD_LETTER_ROUTES, PLATFORM_ROUTES, NotCountryOwned

NOT_COUNTRY_OWNED: NotCountryOwned = {
    **PLATFORM_ROUTES,
    **DEAD_LETTER_ROUTES,
    ("GET", "/v1/programmes/{programme_id}/templates"): "survey templates are programme configuration",
    ("GET", "/v1/templates/{template_id}"): "survey templates are programme configuration",
    ("POST", "/v1/templates/{template_id}/versions"): "programme configuration; global HR admins only",
    ("GET", "/v1/programmes/{programme_id}/evaluation-settings"): "programme configuration (k-anonymity)",
    ("PUT", "/v1/programmes/{programme_id}/evaluation-settings"): "programme configuration; global HR admins only",
    (
        "POST",
        "/v1/assignments:remind-overdue",
    ): "names no object: reminds only the caller's countries' assignments (test_reminders_stay_in_country)",
}
