"""One default batch for every way of starting a replay."""

from __future__ import annotations

import inspect

from libs import cli
from libs.messaging.replayer import BATCH_SIZE, Replayer
from libs.runtime import replay


def test_the_command_the_runtime_and_the_replayer_share_one_default_batch() -> None:
    assert inspect.signature(cli.replay).parameters["batch_size"].default == BATCH_SIZE
    assert inspect.signature(replay.replay).parameters["batch_size"].default == BATCH_SIZE
    assert Replayer.__dataclass_fields__["batch_size"].default == BATCH_SIZE
