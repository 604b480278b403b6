"""Which routes hold no country-owned data, and why.

Every business route of a service either reads or changes country-owned data
(a wave, a participant, a run, a pair, a session, a check-in, an assignment,
or a list filtered by country or by one of them), and is then proven by the
isolation matrix (tests/integration/test_isolation_matrix.py: a committee of
another country gets 404, a participant outside the object gets 404, ops gets
403), or it is declared here or in its service's
``services/<name>/entrypoints/scope.py`` with the reason it is not. The
matrix fails for a route that is in neither.
"""

from __future__ import annotations

#: (method, path) -> why the route is not country-owned.
NotCountryOwned = dict[tuple[str, str], str]

#: Routes every service gets from ``ServiceDefinition.build_app``.
PLATFORM_ROUTES: NotCountryOwned = {
    ("GET", "/v1/audit"): "the audit trail of the service: global HR admins only (403 for every other role)",
}

#: Routes every service with projections gets (libs/messaging/deadletters_api.py):
#: ops routes, not business routes, so ops is the one role they admit.
DEAD_LETTER_ROUTES: NotCountryOwned = {
    ("GET", "/v1/dead-letters"): "the events the service's consumers parked: ops only (403 for every business role)",
    ("POST", "/v1/dead-letters:redrive"): "re-applies parked events through their projection: ops only",
}
