"""``freeze_startup_heap``: what is alive at start-up leaves the collector's walks."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from libs.runtime.heap import freeze_startup_heap


@pytest.fixture
def unfrozen() -> Iterator[None]:
    gc.unfreeze()
    yield
    gc.unfreeze()  # back to the oldest generation: later tests collect as usual


class Thing:
    """An instance the collector tracks (a dict of strings it would not)."""


class Node:
    def __init__(self) -> None:
        self.me = self  # a reference cycle: only the cyclic collector frees it


def test_objects_alive_at_start_up_are_frozen_and_later_ones_are_not(unfrozen: None) -> None:
    before = [Thing() for _ in range(1000)]
    frozen = freeze_startup_heap()
    assert frozen == gc.get_freeze_count() >= len(before)
    walked = {id(o) for o in gc.get_objects()}  # what the collector's generations hold
    assert not any(id(o) in walked for o in before)
    later = Thing()
    assert any(o is later for o in gc.get_objects())


def test_garbage_made_after_the_freeze_is_still_collected(unfrozen: None) -> None:
    freeze_startup_heap()
    cycles = [Node() for _ in range(100)]
    del cycles
    assert gc.collect() >= 100


def test_start_up_garbage_is_freed_not_frozen(unfrozen: None) -> None:
    cycles = [Node() for _ in range(100)]
    del cycles
    frozen_before = gc.get_freeze_count()
    freeze_startup_heap()
    assert gc.collect() == 0  # freed before the freeze, nothing left to find
    assert not any(isinstance(o, Node) for o in gc.get_objects())
    assert gc.get_freeze_count() >= frozen_before
