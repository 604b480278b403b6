"""Rendering figures to SVG or PNG bytes with matplotlib (headless Agg backend).

matplotlib is pinned in pyproject.toml: the de-facto standard for static
charts, it writes both formats an HR committee drops into a slide.
"""

from __future__ import annotations

import io
from enum import StrEnum

import matplotlib

matplotlib.use("Agg")  # no display: render to memory only

from matplotlib.figure import Figure  # noqa: E402

# Same bytes for the same figure: no creation date in the files.
_METADATA = {"svg": {"Date": None}, "png": {"Software": None}}


class ImageFormat(StrEnum):
    SVG = "svg"
    PNG = "png"


MEDIA_TYPES = {ImageFormat.SVG: "image/svg+xml", ImageFormat.PNG: "image/png"}


def new_figure(width: float, height: float) -> Figure:
    # A Figure not registered with pyplot: nothing global to leak or close.
    return Figure(figsize=(width, height), dpi=100, layout="constrained")


def render(figure: Figure, fmt: ImageFormat) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format=fmt.value, metadata=_METADATA[fmt.value])
    return buffer.getvalue()
