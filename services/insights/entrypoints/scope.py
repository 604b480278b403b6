"""Insights routes that are not country-owned (libs/runtime/scope.py says
what this list is for); every other route is in the isolation matrix."""

from __future__ import annotations

from libs.runtime.scope import DEAD_LETTER_ROUTES, PLATFORM_ROUTES, NotCountryOwned

NOT_COUNTRY_OWNED: NotCountryOwned = {
    **PLATFORM_ROUTES,
    **DEAD_LETTER_ROUTES,
    ("GET", "/v1/programmes/{programme_id}/health-rules"): "programme configuration (pair-health thresholds)",
    ("PUT", "/v1/programmes/{programme_id}/health-rules"): "programme configuration; global HR admins only",
    (
        "GET",
        "/v1/programmes/{programme_id}/rollout",
    ): "programme-wide figures: a committee gets only its countries' rows (test_insights_rollout)",
    (
        "GET",
        "/v1/programmes/{programme_id}/rollout/chart",
    ): "programme-wide chart: a committee gets only its countries (test_insights_rollout)",
    (
        "GET",
        "/v1/programmes/{programme_id}/success-factors",
    ): "programme-wide statistics over the committee's countries' pairs only, k-anonymous",
}
