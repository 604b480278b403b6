"""What ``binome replay`` shows: a progress bar per projection with its rate,
then one line per projection saying what it applied."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, Task, TextColumn, TimeElapsedColumn
from rich.text import Text

from libs.messaging.replayer import Replayed
from libs.runtime.replay import READ_TABLES


class EventsPerSecond(ProgressColumn):
    """The task's recent rate, in events per second."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text("-- events/s" if speed is None else f"{speed:,.0f} events/s", style="progress.data.speed")


def replay_progress(console: Console | None = None) -> Progress:
    """A display to enter around the replay (on stderr: stdout keeps the summary)."""
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        EventsPerSecond(),
        TimeElapsedColumn(),
        console=console or Console(stderr=True),
    )


def summary(rebuilt: Mapping[str, Replayed]) -> Iterator[str]:
    for name, done in rebuilt.items():
        if name == READ_TABLES:
            yield f"{name}: rebuilt from the {done.applied} events of the log"
            continue
        yield (
            f"{name}: {done.applied} events applied, {done.skipped} applied already by the live consumer, "
            f"{done.unknown} of unknown types, {done.parked} parked; {done.read} read in {done.seconds:.1f} s "
            f"({done.events_per_s:,.0f} events/s{f', {done.processes} processes' if done.processes > 1 else ''})"
        )
