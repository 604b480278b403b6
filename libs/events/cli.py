"""``binome schemas``: regenerate the committed event contracts.

Only the command function lives here; the ``binome`` Typer app registers it
(``app.command("schemas")(libs.events.cli.schemas)``), so this module stays
free of application wiring.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from libs.events.schemagen import DeclaredConsumer, write_all


def service_consumers() -> dict[str, list[DeclaredConsumer]]:
    """Every service's consumers, for the AsyncAPI receive operations
    (imported here: the services depend on libs, not the other way round)."""
    from libs.runtime.service import declared_consumers
    from services import SERVICES

    return declared_consumers(SERVICES)  # type: ignore[return-value]


def schemas(
    out: Annotated[
        Path,
        typer.Option(help="Directory for asyncapi.json and events/<type>.schema.json."),
    ] = Path("docs/events"),
) -> None:
    """Generate the JSON Schema of every event and the AsyncAPI document."""
    written = write_all(out, consumers=service_consumers())
    for path in written:
        typer.echo(f"wrote {path}")
    typer.echo(f"{len(written)} files in {out}")
