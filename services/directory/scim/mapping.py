"""SCIM ``User`` <-> the directory's ``PersonRecord``.

``record_of`` reads what a client sent (already validated by scim2-models)
into the directory's terms, refusing values Binome cannot keep with the
SCIM error a client understands; ``user_of`` writes a stored person back as
the resource ``/Users`` serves, with ``meta.version`` the stream's version.
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from typing import Any

from scim2_models import InvalidValueException, Meta

from libs.events.contexts.directory import DirectoryProfile, PersonIdentity
from libs.events.contexts.directory import Email as PersonEmail
from services.directory.domain.person import PersonRecord
from services.directory.scim.models import BinomeUser, Email, Enterprise, Manager, Name, ScimUser

COUNTRY = re.compile(r"^[A-Za-z]{2}$")
LANGUAGE = re.compile(r"^[A-Za-z]{2}$")
#: The highest job level the directory keeps (its column is a 32-bit integer).
MAX_JOB_LEVEL = 2**31 - 1


def etag(version: int) -> str:
    """The weak entity tag of a person's stream version (RFC 7644 §3.14)."""
    return f'W/"{version}"'


def record_of(user: ScimUser) -> PersonRecord:
    """The directory's view of a User a client sent."""
    enterprise: Enterprise = user[Enterprise] or Enterprise()
    binome: BinomeUser = user[BinomeUser] or BinomeUser()
    name = user.name or Name()
    if not (user.user_name or "").strip():
        raise InvalidValueException(detail="userName is required and may not be blank.")
    identity = PersonIdentity(
        user_name=user.user_name.strip(),
        external_id=user.external_id,
        employee_number=enterprise.employee_number,
        display_name=user.display_name,
        given_name=name.given_name,
        family_name=name.family_name,
        formatted_name=name.formatted,
        title=user.title,
        emails=[_email(e) for e in user.emails or []],
    )
    profile = DirectoryProfile(
        country=_country(binome.country),
        entity=binome.entity,
        job_level=_job_level(binome.job_level),
        business_function=binome.business_function,
        languages=_languages(binome.languages),
        organization=enterprise.organization,
        division=enterprise.division,
        department=enterprise.department,
        cost_center=enterprise.cost_center,
        preferred_language=user.preferred_language,
        locale=user.locale,
        timezone=user.timezone,
    )
    return PersonRecord(identity, _manager_id(enterprise.manager), profile, user.active)


def user_of(row: dict[str, Any], location: str) -> ScimUser:
    """The resource of one read-table row (``people``); ``location`` is the
    URL of ``/Users`` under which it is served."""
    state = row["state"]
    identity = PersonIdentity.model_validate(state["identity"])
    profile = DirectoryProfile.model_validate(state["profile"])
    manager_id = state.get("manager_id")
    person_id = str(row["person_id"])
    user = ScimUser(
        id=person_id,
        external_id=identity.external_id,
        user_name=identity.user_name,
        name=_name(identity),
        display_name=identity.display_name,
        title=identity.title,
        preferred_language=profile.preferred_language,
        locale=profile.locale,
        timezone=profile.timezone,
        active=state.get("active"),
        emails=[Email(value=e.value, type=e.type, primary=e.primary) for e in identity.emails] or None,
        meta=Meta(
            resource_type="User",
            created=row["created_at"],
            last_modified=row["last_modified"],
            location=f"{location}/{person_id}",
            version=etag(row["version"]),
        ),
    )
    enterprise = Enterprise(
        employee_number=identity.employee_number,
        cost_center=profile.cost_center,
        organization=profile.organization,
        division=profile.division,
        department=profile.department,
        manager=Manager(value=manager_id, ref=f"{location}/{manager_id}") if manager_id else None,
    )
    if enterprise.model_dump(exclude_none=True, exclude={"schemas"}):
        user[Enterprise] = enterprise
    binome = BinomeUser(
        country=profile.country,
        entity=profile.entity,
        job_level=profile.job_level,
        business_function=profile.business_function,
        languages=",".join(profile.languages) or None,
    )
    if binome.model_dump(exclude_none=True, exclude={"schemas"}):
        user[BinomeUser] = binome
    return user


def last_modified(row: dict[str, Any]) -> datetime:
    return row["last_modified"]


# --------------------------------------------------------------------------- values


def _email(email: Email) -> PersonEmail:
    if not email.value:
        raise InvalidValueException(detail="emails: every e-mail needs a value.")
    kind = email.type.value if hasattr(email.type, "value") else email.type
    return PersonEmail(value=str(email.value), type=kind, primary=email.primary)


def _name(identity: PersonIdentity) -> Name | None:
    if not (identity.given_name or identity.family_name or identity.formatted_name):
        return None
    return Name(given_name=identity.given_name, family_name=identity.family_name, formatted=identity.formatted_name)


def _manager_id(manager: Manager | None) -> str | None:
    if manager is None:
        return None
    value = (manager.value or "").strip()
    if not value:
        raise InvalidValueException(detail="manager.value: the id of the manager's User is required.")
    # RFC 7643 §4.3: the manager's SCIM ``id``, which Binome issues (a UUID);
    # anything else can never name one of its Users.
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise InvalidValueException(detail="manager.value: the id of the manager's User (a UUID).") from None


def _country(country: str | None) -> str | None:
    if country is None:
        return None
    if not COUNTRY.match(country):
        raise InvalidValueException(detail=f"{BinomeUser.__schema__}:country: an ISO 3166-1 alpha-2 code.")
    return country.upper()


def _job_level(level: int | None) -> int | None:
    if level is not None and not 1 <= level <= MAX_JOB_LEVEL:
        raise InvalidValueException(
            detail=f"{BinomeUser.__schema__}:jobLevel: 1 (entry level) to {MAX_JOB_LEVEL}."
        )
    return level


def _languages(languages: str | None) -> list[str]:
    """ "fr, EN,fr" -> ["fr", "en"]."""
    codes = [code.strip() for code in (languages or "").split(",") if code.strip()]
    bad = [code for code in codes if not LANGUAGE.match(code)]
    if bad:
        raise InvalidValueException(
            detail=f"{BinomeUser.__schema__}:languages: comma-separated ISO 639-1 codes, not {bad}."
        )
    return list(dict.fromkeys(code.lower() for code in codes))
