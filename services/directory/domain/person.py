"""A person of the organisation's directory, as its HR system provisions them.

The aggregate knows the person's whole current state (``PersonRecord``) and
turns a wanted state into the events that say what changed: ``PersonUpdated``
for identity, manager or profile, then ``PersonDeactivated`` or
``PersonReactivated`` for ``active``. Rules that need other people (the
``userName`` taken, the manager chain) are the service layer's: they read the
directory, this class only ever sees one person.
"""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from libs.domain.aggregate import Aggregate
from libs.domain.errors import InvalidState
from libs.events.contexts.directory import (
    DeactivationCause,
    DirectoryProfile,
    PersonDeactivated,
    PersonDeleted,
    PersonErased,
    PersonIdentity,
    PersonProvisioned,
    PersonReactivated,
    PersonState,
    PersonUpdated,
)
from libs.events.contexts.enrollment import Actor


@dataclass(frozen=True)
class PersonRecord:
    """What the directory holds about a person at one moment; ``active`` as
    the HR system states it (None: not stated, which counts as active)."""

    identity: PersonIdentity
    manager_id: str | None
    profile: DirectoryProfile
    active: bool | None

    @property
    def is_active(self) -> bool:
        return self.active is not False

    def changes_from(self, before: PersonRecord) -> list[str]:
        """Dotted names of what differs from ``before``."""
        changed = [f"identity.{name}" for name in PersonIdentity.model_fields
                   if getattr(self.identity, name) != getattr(before.identity, name)]
        if self.manager_id != before.manager_id:
            changed.append("manager_id")
        changed += [f"profile.{name}" for name in DirectoryProfile.model_fields
                    if getattr(self.profile, name) != getattr(before.profile, name)]
        if self.active != before.active:
            changed.append("active")
        return changed


class Gone(InvalidState):
    """The person was deleted or erased: nothing changes them any more."""


class Person(Aggregate):
    created_by = PersonProvisioned
    kind = "person"

    def __init__(self, organisation: str) -> None:
        super().__init__(organisation)
        self.id: UUID | None = None
        self.state: PersonRecord | None = None
        self.deleted = False
        self.erased = False

    @classmethod
    def provision(cls, organisation: str, person_id: UUID, record: PersonRecord, actor: Actor) -> Person:
        person = cls(organisation)
        person.record(PersonProvisioned(person_id=person_id, actor=actor, **_state(record)))
        return person

    @property
    def country(self) -> str | None:
        return self.state.profile.country if self.state is not None else None

    def change(self, wanted: PersonRecord, actor: Actor) -> list[str]:
        """Record what ``wanted`` changes (``PersonUpdated``, then a leave or
        a return when the person's activity changes); returns the changes."""
        current = self._current()
        changed = wanted.changes_from(current)
        if changed:
            self.record(PersonUpdated(person_id=self.id, actor=actor, changed=changed, **_state(wanted)))
        if wanted.is_active != current.is_active:
            self._set_active(wanted.is_active, DeactivationCause.ACTIVE_FALSE, actor)
        return changed

    def delete(self, actor: Actor) -> None:
        """DELETE /Users/{id}: a leaver first (if still active), then gone."""
        if self._current().active:
            self._set_active(False, DeactivationCause.DELETED, actor)
        self.record(PersonDeleted(person_id=self.id, actor=actor))

    def erase(self, actor: Actor) -> None:
        """GDPR erasure (the key is shredded once this event is stored); a
        person still in the directory is deleted first (they leave)."""
        if self.erased:
            raise Gone(f"Person {self.id} is erased already.")
        if not self.deleted:
            self.delete(actor)
        self.record(PersonErased(person_id=self.id, actor=actor))

    def _current(self) -> PersonRecord:
        if self.deleted or self.erased or self.state is None:
            raise Gone(f"Person {self.id} is no longer in the directory.")
        return self.state

    def _set_active(self, active: bool, cause: DeactivationCause, actor: Actor) -> None:
        if active:
            self.record(PersonReactivated(person_id=self.id, actor=actor))
        else:
            self.record(PersonDeactivated(person_id=self.id, actor=actor, cause=cause))

    # ------------------------------------------------------------------ folding

    def _on_state(self, event: PersonState) -> None:
        self.id = event.person_id
        self.state = PersonRecord(event.identity, event.manager_id, event.profile, event.active)

    _on_PersonProvisioned = _on_state
    _on_PersonUpdated = _on_state

    def _on_PersonDeactivated(self, event: PersonDeactivated) -> None:
        self._with_active(False)

    def _on_PersonReactivated(self, event: PersonReactivated) -> None:
        # After a PersonUpdated that stated it (true, or no longer false), or alone.
        assert self.state is not None
        self._with_active(True if self.state.active is False else self.state.active)

    def _on_PersonDeleted(self, event: PersonDeleted) -> None:
        self.deleted = True

    def _on_PersonErased(self, event: PersonErased) -> None:
        self.erased = True

    def _with_active(self, active: bool | None) -> None:
        assert self.state is not None
        self.state = PersonRecord(self.state.identity, self.state.manager_id, self.state.profile, active)


def _state(record: PersonRecord) -> dict[str, object]:
    return {"identity": record.identity, "manager_id": record.manager_id, "profile": record.profile,
            "active": record.active}
