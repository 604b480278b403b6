"""Who is calling, and what they may see.

A ``Principal`` is built only by ``libs.auth.tokens.TokenVerifier`` from a
verified JWT; nothing else should construct one outside tests. It is frozen
so that no code path can widen a caller's rights after verification.

Visibility rules (ARCHITECTURE.md, "Auth"):

- ``hr_admin`` (global HR team) and ``service`` (another Binome service acting
  on the organisation's behalf) see every country of their organisation.
- ``regional_committee`` sees only the countries listed in its token.
- ``ops`` runs the platform (dead letters, rebuilds, metrics): it gets no
  country-wide view of business data.
- ``dev_clock`` moves the platform's dev clock (dev mode only,
  ``libs/runtime/clock.py``) and nothing else: no HR or ops role may, since
  moving "now" runs retention and due dates for every organisation.
- ``provisioning`` is an HR system's SCIM client (``/scim/v2``, the
  directory service): it writes and reads its organisation's directory and
  nothing else; no other role may call SCIM.
- ``participant`` sees only what is theirs; that is an ownership check
  (``principal.subject == resource owner``) made by the endpoint, not a
  country grant.

Rights are the union over the roles held: a committee member who is also an
``hr_admin`` sees everything. Organisation (tenant) isolation comes first and
is checked separately: nobody sees another organisation's data.
"""

from __future__ import annotations

from dataclasses import dataclass, field

HR_ADMIN = "hr_admin"
REGIONAL_COMMITTEE = "regional_committee"
OPS = "ops"
PARTICIPANT = "participant"
SERVICE = "service"
DEV_CLOCK = "dev_clock"
PROVISIONING = "provisioning"

ALL_ROLES: frozenset[str] = frozenset(
    {HR_ADMIN, REGIONAL_COMMITTEE, OPS, PARTICIPANT, SERVICE, DEV_CLOCK, PROVISIONING}
)

# Roles that see every country of their own organisation.
ORGANISATION_WIDE_ROLES: frozenset[str] = frozenset({HR_ADMIN, SERVICE})


class Forbidden(Exception):
    """The caller is authenticated but may not do this.

    Raised by domain and application code; ``libs.api.problems`` turns it into
    a 403 ``application/problem+json`` response.
    """


def normalise_country(country: str) -> str:
    """ISO 3166-1 alpha-2 codes are compared upper-case ("fr" == "FR")."""
    return country.strip().upper()


@dataclass(frozen=True, slots=True)
class Principal:
    subject: str
    organisation: str
    roles: frozenset[str] = field(default_factory=frozenset)
    # Only meaningful for regional_committee: the countries it may see.
    countries: frozenset[str] = field(default_factory=frozenset)
    # The OAuth client that obtained the token (``client_id`` or ``azp``).
    client_id: str | None = None

    def __post_init__(self) -> None:
        # Accept any iterable from callers but store canonical frozensets, so
        # equality and membership never depend on how the caller built them.
        object.__setattr__(self, "roles", frozenset(self.roles))
        object.__setattr__(
            self, "countries", frozenset(normalise_country(c) for c in self.countries)
        )

    def has_role(self, *roles: str) -> bool:
        """True if the principal holds at least one of ``roles``."""
        return not self.roles.isdisjoint(roles)

    def require_role(self, *roles: str) -> None:
        """Raise ``Forbidden`` unless the principal holds one of ``roles``."""
        if not self.has_role(*roles):
            raise Forbidden(f"requires one of the roles: {', '.join(sorted(roles))}")

    def sees_all_countries(self) -> bool:
        return self.has_role(*ORGANISATION_WIDE_ROLES)

    def can_see_country(self, country: str | None) -> bool:
        """May this principal see data of ``country`` (within its organisation)?

        Data with no country (e.g. a programme-level setting) is visible only
        to organisation-wide roles: a committee's grant is a list of
        countries, and "no country" is not in it.
        """
        if self.sees_all_countries():
            return True
        if country is None:
            return False
        if self.has_role(REGIONAL_COMMITTEE):
            return normalise_country(country) in self.countries
        return False

    def can_see(self, organisation: str, country: str | None) -> bool:
        """Tenant check first, then the country rule."""
        return organisation == self.organisation and self.can_see_country(country)

    def require_country(self, organisation: str, country: str | None) -> None:
        """Raise ``Forbidden`` unless ``can_see(organisation, country)``."""
        if not self.can_see(organisation, country):
            raise Forbidden("not allowed for this organisation or country")


def require_role(principal: Principal, *roles: str) -> None:
    """Function form of ``Principal.require_role`` for call sites that prefer it."""
    principal.require_role(*roles)
