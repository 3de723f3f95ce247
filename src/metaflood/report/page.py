"""The event report: one self-contained HTML page (figures inlined, no external requests)."""

from __future__ import annotations

import json
from pathlib import Path

import jinja2

from metaflood.core.classes import CLASS_COLORS, CLASS_NAMES
from metaflood.core.config import PERIODS
from metaflood.core.raster import atomic_path
from metaflood.flood.support import SUPPORT
from metaflood.report.figures import coregistration_chart, map_png, reliability_chart
from metaflood.report.maps import ReportInputs, event_maps, load_layers

TEMPLATE = "report.html.j2"


def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("metaflood.report", "templates"),
        autoescape=jinja2.select_autoescape(["html", "j2"]),
        undefined=jinja2.StrictUndefined,
    )


def unreliable_shifts(stats: dict) -> list[str]:
    """Plain sentences for every shift that was judged unreliable and not applied."""
    sentences = []
    for period, pairs in stats["coregistration"].items():
        for pair, shift in pairs.items():
            if not shift.get("applied"):
                dy, dx = shift["shift"]
                reason = shift.get("reason", "unreliable")
                sentences.append(
                    f"{period}-event {pair.replace('_', ' ')}: the estimated shift "
                    f"({dy:+.2f}, {dx:+.2f}) px was judged unreliable and not applied ({reason})."
                )
    return sentences


def reliability_figure(stats: dict) -> str | None:
    validation = stats.get("validation")
    if validation and "confidence" in validation:
        return reliability_chart(
            validation["confidence"]["reliability"], "Confidence against the demo truth"
        )
    return None


def write_report(event: str, inputs: ReportInputs, out: Path) -> Path:
    layers = load_layers(inputs)
    maps = event_maps(layers)
    figures = {key: map_png(**spec) for key, spec in maps.items()}
    summary = json.loads(Path(inputs.stats).read_text())
    figures["coregistration"] = coregistration_chart(summary["coregistration"])
    reliability = reliability_figure(summary)
    if reliability:
        figures["reliability"] = reliability
    html = (
        _environment()
        .get_template(TEMPLATE)
        .render(
            event=event,
            stats=summary,
            figures=figures,
            titles={key: spec["title"] for key, spec in maps.items()},
            unreliable=unreliable_shifts(summary),
            class_names=CLASS_NAMES,
            class_colors=[f"rgb{c}" for c in CLASS_COLORS],
            json_dump=lambda obj: json.dumps(obj, indent=2),
            shape=layers.extent.shape,
            support=SUPPORT,
            periods=PERIODS,
        )
    )
    with atomic_path(out) as tmp:
        tmp.write_text(html, encoding="utf-8")
    return out
