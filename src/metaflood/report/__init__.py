"""The event report: one self-contained HTML page (figures inlined, no external requests)."""

from __future__ import annotations

import json
from pathlib import Path

import jinja2

from metaflood.change import EXTENT_COLORMAP, FLOODED, PERMANENT
from metaflood.classes import CLASS_COLORS, CLASS_NAMES, colormap
from metaflood.raster import atomic_path, read_checked
from metaflood.report.figures import classes_rgba, map_png, sar_image, true_colour

TEMPLATE = "report.html.j2"


def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("metaflood.report", "templates"),
        autoescape=jinja2.select_autoescape(["html", "j2"]),
        undefined=jinja2.StrictUndefined,
    )


COVERAGE_COLORS = {
    3: (0, 153, 68, 255),  # both valid
    1: (230, 145, 30, 255),  # SAR only
    2: (70, 130, 200, 255),  # optical only
    0: (120, 120, 120, 255),  # neither
}
COVERAGE_LEGEND = [
    ("SAR and optical", COVERAGE_COLORS[3][:3]),
    ("SAR only", COVERAGE_COLORS[1][:3]),
    ("optical only", COVERAGE_COLORS[2][:3]),
    ("neither", COVERAGE_COLORS[0][:3]),
]


def _figures(stacks, landcover, valid, extent, pixel_size) -> dict[str, str]:
    figures = {}
    class_legend = list(zip(CLASS_NAMES, CLASS_COLORS, strict=True))
    for period, stack, classes in zip(("pre", "post"), stacks, landcover, strict=True):
        label = "Pre-event" if period == "pre" else "Post-event"
        figures[f"{period}_optical"] = map_png(
            true_colour(stack), title=f"{label} optical (true colour)", pixel_size=pixel_size
        )
        figures[f"{period}_sar"] = map_png(
            sar_image(stack), title=f"{label} SAR (VV, dB)", pixel_size=pixel_size
        )
        figures[f"{period}_landcover"] = map_png(
            classes_rgba(classes, colormap()),
            title=f"{label} land cover (MetaRS)",
            pixel_size=pixel_size,
            legend=class_legend,
        )
    figures["post_coverage"] = map_png(
        classes_rgba(valid[1], COVERAGE_COLORS),
        title="Post-event modality availability",
        pixel_size=pixel_size,
        legend=COVERAGE_LEGEND,
    )
    overlay_colors = {FLOODED: EXTENT_COLORMAP[FLOODED], PERMANENT: EXTENT_COLORMAP[PERMANENT]}
    figures["flood"] = map_png(
        sar_image(stacks[1]),
        overlay=classes_rgba(extent, overlay_colors),
        title="Flood extent over the post-event SAR image",
        pixel_size=pixel_size,
        legend=[
            ("flooded (new water)", EXTENT_COLORMAP[FLOODED][:3]),
            ("permanent water", EXTENT_COLORMAP[PERMANENT][:3]),
        ],
    )
    return figures


def write_report(
    event: str,
    *,
    stacks: list[Path],
    valid: list[Path],
    landcover: list[Path],
    extent: Path,
    stats: Path,
    out: Path,
) -> Path:
    stack_data = [read_checked(p)[0] for p in stacks]
    class_data = [read_checked(p)[0][0] for p in landcover]
    valid_data = [read_checked(p)[0][0] for p in valid]
    extent_data, profile = read_checked(extent)
    pixel_size = abs(profile["transform"].a)
    figures = _figures(stack_data, class_data, valid_data, extent_data[0], pixel_size)
    summary = json.loads(Path(stats).read_text())
    html = (
        _environment()
        .get_template(TEMPLATE)
        .render(
            event=event,
            stats=summary,
            figures=figures,
            class_names=CLASS_NAMES,
            class_colors=[f"rgb{c}" for c in CLASS_COLORS],
            json_dump=lambda obj: json.dumps(obj, indent=2),
            shape=extent_data.shape[1:],
        )
    )
    with atomic_path(out) as tmp:
        tmp.write_text(html, encoding="utf-8")
    return out
