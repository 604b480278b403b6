"""Who sees which country: the rules every endpoint relies on."""

from __future__ import annotations

import pytest

from libs.auth.principal import (
    HR_ADMIN,
    OPS,
    PARTICIPANT,
    REGIONAL_COMMITTEE,
    SERVICE,
    Forbidden,
    Principal,
    require_role,
)


def who(*roles: str, countries: tuple[str, ...] = ()) -> Principal:
    return Principal("u1", "acme", frozenset(roles), frozenset(countries))


@pytest.mark.parametrize("role", [HR_ADMIN, SERVICE])
def test_organisation_wide_roles_see_every_country(role: str) -> None:
    p = who(role)
    assert p.can_see_country("FR") and p.can_see_country("JP")
    # ...including data that has no country (programme-level).
    assert p.can_see_country(None)


def test_committee_sees_only_its_countries() -> None:
    p = who(REGIONAL_COMMITTEE, countries=("FR", "be"))
    assert p.countries == {"FR", "BE"}  # normalised upper-case
    assert p.can_see_country("FR")
    assert p.can_see_country("be")
    assert not p.can_see_country("DE")
    assert not p.can_see_country(None)


def test_committee_without_countries_sees_nothing() -> None:
    assert not who(REGIONAL_COMMITTEE).can_see_country("FR")


@pytest.mark.parametrize("role", [OPS, PARTICIPANT])
def test_ops_and_participants_get_no_country_wide_view(role: str) -> None:
    # Countries in a participant's token grant nothing: only the committee
    # role turns the countries claim into visibility.
    p = who(role, countries=("FR",))
    assert not p.can_see_country("FR")


def test_rights_are_the_union_of_roles() -> None:
    assert who(REGIONAL_COMMITTEE, HR_ADMIN, countries=("FR",)).can_see_country("DE")


def test_other_organisation_is_never_visible() -> None:
    p = who(HR_ADMIN)
    assert p.can_see("acme", "FR")
    assert not p.can_see("globex", "FR")
    with pytest.raises(Forbidden):
        p.require_country("globex", "FR")


def test_has_role_and_require_role() -> None:
    p = who(OPS)
    assert p.has_role(OPS) and p.has_role(HR_ADMIN, OPS) and not p.has_role(HR_ADMIN)
    p.require_role(OPS, HR_ADMIN)
    require_role(p, OPS)
    with pytest.raises(Forbidden):
        p.require_role(HR_ADMIN)
    with pytest.raises(Forbidden):
        require_role(p, HR_ADMIN)


def test_principal_is_immutable() -> None:
    p = who(PARTICIPANT)
    with pytest.raises(AttributeError):
        p.roles = frozenset({HR_ADMIN})  # type: ignore[misc]
