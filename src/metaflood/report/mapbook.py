"""A printable map book (PDF): a cover with the key figures, then one map per A4 page.

Made with matplotlib's PdfPages, so nothing beyond what pip installs is needed.
"""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.backends.backend_pdf import PdfPages  # noqa: E402

from metaflood.core.raster import atomic_path  # noqa: E402
from metaflood.report.figures import map_figure  # noqa: E402
from metaflood.report.maps import ReportInputs, event_maps, load_layers  # noqa: E402

A4 = (8.27, 11.69)


def _cover(event: str, stats: dict):
    flood, provenance = stats["flood"], stats["provenance"]
    window = provenance["event_config"]
    lines = [
        f"Flood map book: {event}",
        "",
        f"Pre-event window  {window['pre']['start']} to {window['pre']['end']}",
        f"Post-event window {window['post']['start']} to {window['post']['end']}",
        f"Grid: {stats['pixel_size_m']} m in {stats['crs']}",
        "",
        f"Newly flooded area (confidence >= {flood['flooded_min_confidence']}): "
        f"{flood['flooded_area_km2']:.4f} km2 "
        f"({flood['flooded_high_confidence_km2']:.4f} km2 at confidence >= "
        f"{flood['high_confidence_threshold']})",
        f"Flood polygons: {flood['polygons']}",
        f"Building area flooded: {flood['buildings']['flooded_building_km2']:.4f} km2",
        f"Building area turned barren (likely destroyed): "
        f"{flood['buildings']['building_to_barren_km2']:.4f} km2",
        f"Post-event area mapped with both modalities: "
        f"{100 * stats['coverage']['post']['both']:.0f}%",
    ]
    if "validation" in stats:
        v = stats["validation"]["flood"]
        lines.append(f"Flood IoU against the demo truth: {v['iou']:.3f}")
    lines += [
        "",
        f"Configuration hash {provenance['config_hash']}",
        f"Model checkpoint {provenance['model']['checkpoint']} "
        f"(sha256 {provenance['model']['sha256'][:16]}...)",
        f"Created {provenance['created']}",
    ]
    fig = plt.figure(figsize=A4)
    fig.text(0.08, 0.92, lines[0], fontsize=18, weight="bold", va="top")
    fig.text(0.08, 0.86, "\n".join(lines[1:]), fontsize=10, va="top", family="monospace")
    return fig


def write_mapbook(event: str, inputs: ReportInputs, out: Path) -> Path:
    layers = load_layers(inputs)
    stats = json.loads(Path(inputs.stats).read_text())
    with atomic_path(out) as tmp, PdfPages(tmp) as pdf:
        cover = _cover(event, stats)
        pdf.savefig(cover)
        plt.close(cover)
        for spec in event_maps(layers).values():
            fig = map_figure(**spec, width_in=6.8)
            fig.set_size_inches(*A4)
            pdf.savefig(fig)
            plt.close(fig)
        info = pdf.infodict()
        info["Title"] = f"Flood map book: {event}"
        info["Creator"] = "metaflood"
    return out
