"""Confirming many proposals of a run in one call.

All or nothing, in the command's one transaction: every pair confirmed
records its own ``PairAccepted``/``PairFormed`` events, as ``:confirm``
would, and a chosen pair that cannot be confirmed is a 422 naming it
(``pair_ids.<i>``) with nothing written.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from uuid import UUID

from libs.auth.principal import Principal
from libs.domain.commands import actor_of
from libs.domain.repository import UnitOfWork
from libs.events.contexts.matching import Side
from services.matching.domain.errors import InvalidRequest
from services.matching.domain.pair import PairStatus
from services.matching.service_layer.lifecycle import load_as_hr
from services.matching.service_layer.views import Views


@dataclass
class Confirmed:
    confirmed: list[UUID] = field(default_factory=list)
    skipped: list[tuple[UUID, str]] = field(default_factory=list)  # (pair, its status): the run's pairs not proposed


async def confirm_run(
    uow: UnitOfWork, views: Views, principal: Principal, run_id: UUID, chosen: Sequence[UUID] | None
) -> Confirmed:
    """Confirm the run's open proposals (``chosen`` None) or the chosen ones."""
    run = await views.run(uow.conn, principal, run_id)  # a run the caller may not see: 404
    of_run = [UUID(p["pair_id"]) for p in run["pairs"]]
    for i, pair_id in enumerate(chosen or ()):
        if pair_id not in of_run:
            raise InvalidRequest(f"pair_ids.{i}", "Not a pair of this run.")
    out, pairs = Confirmed(), []
    for i, pair_id in enumerate(of_run if chosen is None else chosen):
        pair = await load_as_hr(uow, principal, pair_id)
        if pair.status is PairStatus.PROPOSED:
            pair.accept(Side.HR, actor_of(principal))
            pairs.append(pair)
            out.confirmed.append(pair_id)
        elif chosen is None:
            out.skipped.append((pair_id, pair.status.value))
        else:
            raise InvalidRequest(f"pair_ids.{i}", f"This pair is {pair.status.value}: only a proposal is confirmed.")
    await uow.repo.add(*pairs)
    return out
