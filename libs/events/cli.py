"""``binome schemas``: regenerate the committed event contracts.

Only the command function lives here; the ``binome`` Typer app registers it
(``app.command("schemas")(libs.events.cli.schemas)``), so this module stays
free of application wiring.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from libs.events.schemagen import write_all


def schemas(
    out: Annotated[
        Path,
        typer.Option(help="Directory for asyncapi.json and events/<type>.schema.json."),
    ] = Path("docs/events"),
) -> None:
    """Generate the JSON Schema of every event and the AsyncAPI document."""
    written = write_all(out)
    for path in written:
        typer.echo(f"wrote {path}")
    typer.echo(f"{len(written)} files in {out}")
