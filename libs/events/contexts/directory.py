"""Events of the directory context: the people an organisation's HR system
provisions through SCIM 2.0 (``/scim/v2``). Emitted by ``services/directory``
on topic ``binome.directory.events``; consumed by enrollment (enrolment by
employee reference, profile changes of participants, leavers) and matching
(the whole manager chain for the reporting-line constraint).

One stream per person (``subject`` = ``person_id``, the SCIM resource ``id``)::

    PersonProvisioned ─> PersonUpdated* ─┬─> PersonDeactivated ─> PersonReactivated ─> ...
                                         └─> PersonDeleted (the SCIM resource is gone)
    ... ─> PersonErased (GDPR: the person's data key is shredded)

Conventions, as in the enrollment context:

* The envelope's ``tenant`` is the organisation (a provisioning client only
  ever writes its own), ``country`` the person's country when the HR system
  gave one (the Binome extension's ``country``).
* Every event that says what a person is carries the whole current state:
  ``identity`` (personal, sealed), ``manager_id`` (personal, sealed),
  ``profile`` (what matching and insights use, no direct identifier) and
  ``active``. A
  consumer never needs an earlier event to know the person now;
  ``PersonUpdated.changed`` names what differs from before.
* Personal values are sealed with the person's own data key (``person_id``);
  erasing the person (``PersonErased``) shreds it, so every ``identity`` and
  ``manager_id`` of their stream reads as ``[erased]`` from then on. Every
  string they hold is typed ``str`` for that reason (a UUID field could not
  read as erased).
* ``manager_id`` is the manager's ``person_id`` in the same organisation
  (SCIM's ``manager.value`` is the manager's resource id, RFC 7643 4.3); the
  chain is followed person by person. The directory refuses a manager
  outside the organisation, the person themself, or a cycle.
* ``actor`` says who made the change (the provisioning client's token).
"""

from __future__ import annotations

from enum import StrEnum
from typing import ClassVar
from uuid import UUID

from pydantic import BaseModel, ConfigDict

from libs.events.contexts.enrollment import Actor
from libs.events.registry import DomainEvent, event

CONTEXT = "directory"


class Value(BaseModel):
    """A nested value of an event: immutable, no unknown members."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class Email(Value):
    value: str
    type: str | None = None  # "work", "home", "other"
    primary: bool | None = None


class PersonIdentity(Value):
    """Who the person is: every string here is personal and sealed.

    ``user_name`` is unique in the organisation (case-insensitively, as SCIM
    says); ``external_id`` is the HR system's id for the person;
    ``employee_number`` the HR reference that enrolments name
    (``ParticipantEnrolled.employee_ref``).
    """

    user_name: str
    external_id: str | None = None
    employee_number: str | None = None
    display_name: str | None = None
    given_name: str | None = None
    family_name: str | None = None
    formatted_name: str | None = None
    title: str | None = None
    emails: list[Email] = []


class DirectoryProfile(Value):
    """What the HR system says about the person's place in the organisation,
    and the fields matching needs that core SCIM lacks (the Binome
    extension). No direct identifier. Structure only: catalogue membership
    (a programme's languages, themes) is the consumer's to check."""

    country: str | None = None  # ISO 3166-1 alpha-2, upper case
    entity: str | None = None  # subsidiary / legal entity
    job_level: int | None = None  # 1 = entry level; higher is more senior
    business_function: str | None = None
    languages: list[str] = []  # ISO 639-1, lower case
    organization: str | None = None  # enterprise extension
    division: str | None = None
    department: str | None = None
    cost_center: str | None = None
    preferred_language: str | None = None  # core SCIM (RFC 7231 language tag)
    locale: str | None = None
    timezone: str | None = None  # IANA name


class DeactivationCause(StrEnum):
    """How the HR system said the person left."""

    ACTIVE_FALSE = "active_false"  # ``active: false`` (PUT or PATCH)
    DELETED = "deleted"  # DELETE /Users/{id}


# --------------------------------------------------------------------------- bases


class PersonEvent(DomainEvent):
    """Every directory event names the person and who made the change."""

    personal_key: ClassVar[str] = "person_id"
    personal_owners: ClassVar[tuple[str, ...]] = ("person_id",)

    person_id: UUID
    actor: Actor


class PersonState(PersonEvent):
    """An event carrying the person's whole current state."""

    personal_fields = frozenset({"identity", "manager_id"})

    identity: PersonIdentity
    manager_id: str | None = None  # the manager's person_id
    profile: DirectoryProfile
    #: ``active`` as the HR system states it; None (not stated) counts as
    #: active. Act on ``PersonDeactivated``/``PersonReactivated``, which
    #: follow whenever ``is_active`` changes.
    active: bool | None = None

    @property
    def is_active(self) -> bool:
        return self.active is not False


# --------------------------------------------------------------------------- person


@event(CONTEXT, "PersonProvisioned", version=1)
class PersonProvisioned(PersonState):
    """The HR system created the person (POST /Users)."""


@event(CONTEXT, "PersonUpdated", version=1)
class PersonUpdated(PersonState):
    """The HR system changed the person (PUT or PATCH /Users/{id}).

    ``changed`` names what differs, as dotted paths: ``identity.emails``,
    ``manager_id``, ``profile.department``, ``active``... When the change
    makes the person leave or come back (``is_active`` changes), a
    ``PersonDeactivated`` or ``PersonReactivated`` follows it in the same
    append: consumers act on those, not on ``changed``.
    """

    changed: list[str]


@event(CONTEXT, "PersonDeactivated", version=1)
class PersonDeactivated(PersonEvent):
    """The person left the organisation (``active: false``, or DELETE, which
    records ``PersonDeleted`` right after): withdraw them from open waves and
    end their pairs ("left the organisation")."""

    cause: DeactivationCause


@event(CONTEXT, "PersonReactivated", version=1)
class PersonReactivated(PersonEvent):
    """An inactive person is active again (``active: true``). Nothing ended
    while they were away comes back by itself."""


@event(CONTEXT, "PersonDeleted", version=1)
class PersonDeleted(PersonEvent):
    """DELETE /Users/{id}: the SCIM resource is gone (404 from now on, the
    ``userName`` free again). Always preceded by ``PersonDeactivated`` when
    the person was active. The stream stays (the log is immutable); erasing
    the personal data is ``PersonErased``."""


@event(CONTEXT, "PersonErased", version=1)
class PersonErased(PersonEvent):
    """GDPR erasure: the person's data key is shredded (libs/gdpr), so every
    ``identity`` and ``manager_id`` in their stream reads as erased; every
    consumer drops or anonymises the person. Carries no personal data."""
