"""Map figures for the report: PNGs with legend, scale bar and north arrow."""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib import colormaps  # noqa: E402
from matplotlib.cm import ScalarMappable  # noqa: E402
from matplotlib.colors import ListedColormap, Normalize  # noqa: E402
from matplotlib.patches import Circle, Patch  # noqa: E402

from metaflood.report.ramps import SAR_GREY_DB  # noqa: E402

FIGURE_DPI = 110


def stretch(band: np.ndarray, low: float = 2, high: float = 98) -> np.ndarray:
    """Percentile stretch to 0..1, robust to clouds and outliers."""
    finite = band[np.isfinite(band)]
    if finite.size == 0:
        return np.zeros_like(band)
    lo, hi = np.percentile(finite, [low, high])
    return np.clip((band - lo) / max(hi - lo, 1e-6), 0, 1)


# The optical composites a map can show, best first: (caption, bands as red, green, blue).
# Green and NIR are in every stack (metaflood.core.bands.REQUIRED_BANDS), so the last always is.
COMPOSITES = (
    ("true colour", ("red", "green", "blue")),
    ("false colour: SWIR 1.6 um, NIR, green as red, green, blue", ("swir16", "nir", "green")),
    ("false colour: NIR, green, green as red, green, blue", ("nir", "green", "green")),
)


def optical_composite(stack: np.ndarray, bands: Sequence[str]) -> tuple[np.ndarray, str]:
    """An RGBA image of the stack's optical bands (`bands`: the stack's band names) and its
    caption: true colour where red, green and blue are there, else a false colour that
    says which bands it shows (a source may lack blue and red)."""
    caption, chosen = next(c for c in COMPOSITES if set(c[1]) <= set(bands))
    rgb = np.stack([stack[list(bands).index(b)] for b in chosen], axis=-1)
    lo, hi = 0.0, float(np.nanpercentile(rgb, 99)) if np.isfinite(rgb).any() else 1.0
    image = np.clip((rgb - lo) / max(hi - lo, 1e-6), 0, 1) ** (1 / 1.4)
    alpha = np.isfinite(rgb).all(axis=-1)
    return np.dstack([np.nan_to_num(image), alpha.astype(float)]), caption


def sar_image(stack: np.ndarray, bands: Sequence[str]) -> np.ndarray:
    """VV backscatter in dB, SAR_GREY_DB (-25..0 dB) to black..white."""
    vv = stack[list(bands).index("VV")]
    low, high = SAR_GREY_DB
    grey = np.clip((vv - low) / (high - low), 0, 1)
    alpha = np.isfinite(vv)
    return np.dstack([np.nan_to_num(grey)] * 3 + [alpha.astype(float)])


def _nice_length(width_m: float) -> float:
    target = width_m / 5
    magnitude = 10 ** np.floor(np.log10(target))
    for step in (5, 2, 1):
        if step * magnitude <= target:
            return step * magnitude
    return magnitude


def add_scale_bar(ax, pixel_size: float, width_px: int, height_px: int) -> None:
    length_m = _nice_length(width_px * pixel_size)
    length_px = length_m / pixel_size
    x0, y0 = width_px * 0.05, height_px * 0.94
    ax.plot([x0, x0 + length_px], [y0, y0], color="black", linewidth=5, solid_capstyle="butt")
    ax.plot([x0, x0 + length_px], [y0, y0], color="white", linewidth=2, solid_capstyle="butt")
    label = f"{length_m / 1000:g} km" if length_m >= 1000 else f"{length_m:g} m"
    ax.text(
        x0 + length_px / 2,
        y0 - height_px * 0.02,
        label,
        ha="center",
        va="bottom",
        fontsize=8,
        color="black",
        bbox={"facecolor": "white", "alpha": 0.7, "edgecolor": "none", "pad": 1},
    )


def add_north_arrow(ax, width_px: int, height_px: int) -> None:
    """Grids are north-up (UTM rows run south), so north is the top of the image: the
    arrow's head points up, at the N just above it. Image rows grow downwards, so the
    head sits at the smaller row."""
    x, tail, head = width_px * 0.93, height_px * 0.24, height_px * 0.13
    ax.annotate(
        "",
        xy=(x, head),
        xytext=(x, tail),
        arrowprops={"arrowstyle": "-|>", "color": "black", "lw": 1.5, "shrinkA": 0, "shrinkB": 0},
    )
    ax.text(
        x,
        head,
        "N",
        ha="center",
        va="bottom",
        fontsize=10,
        fontweight="bold",
        bbox={"facecolor": "white", "alpha": 0.7, "edgecolor": "none", "pad": 1},
    )


def map_figure(
    image: np.ndarray,
    *,
    title: str,
    pixel_size: float,
    legend: list[tuple[str, tuple[int, int, int]]] | None = None,
    overlay: np.ndarray | None = None,
    colorbar: tuple[str, float, float, str] | None = None,
    width_in: float = 5.2,
):
    """One map with scale bar, north arrow and legend (or colour bar), as a Figure."""
    height, width = image.shape[:2]
    fig, ax = plt.subplots(
        figsize=(width_in, width_in * height / max(width, 1) + 0.4), dpi=FIGURE_DPI
    )
    ax.imshow(image, interpolation="nearest")
    if overlay is not None:
        ax.imshow(overlay, interpolation="nearest")
    ax.set_title(title, fontsize=10)
    ax.set_axis_off()
    add_scale_bar(ax, pixel_size, width, height)
    add_north_arrow(ax, width, height)
    if legend:
        handles = [
            Patch(facecolor=np.array(rgb) / 255, edgecolor="grey", label=name)
            for name, rgb in legend
        ]
        ax.legend(
            handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=7, frameon=False
        )
    if colorbar:
        cmap, vmin, vmax, label = colorbar
        mappable = ScalarMappable(norm=Normalize(vmin, vmax), cmap=cmap)
        bar = fig.colorbar(mappable, ax=ax, fraction=0.04, pad=0.02)
        bar.set_label(label, fontsize=8)
        bar.ax.tick_params(labelsize=7)
    return fig


def figure_uri(fig) -> str:
    """A Figure as a base64 PNG data URI (self-contained: no external file)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", bbox_inches="tight")
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def map_png(image: np.ndarray, **kwargs) -> str:
    """Render one map (see map_figure) as a base64 PNG data URI."""
    return figure_uri(map_figure(image, **kwargs))


def scalar_rgba(
    values: np.ndarray, cmap: str, vmin: float, vmax: float, valid: np.ndarray | None = None
) -> np.ndarray:
    """A continuous raster through a colour map; NaN (or ~valid) transparent."""
    valid = np.isfinite(values) if valid is None else valid & np.isfinite(values)
    rgba = colormaps[cmap](Normalize(vmin, vmax, clip=True)(np.nan_to_num(values)))
    rgba[..., 3] = valid.astype(float)
    return rgba


def classes_rgba(classes: np.ndarray, colors: dict[int, tuple[int, int, int, int]]) -> np.ndarray:
    """Class raster to RGBA through a colour table (unknown values transparent)."""
    table = np.zeros((256, 4), dtype=float)
    for value, rgba in colors.items():
        table[value] = np.array(rgba) / 255
    return table[classes]


def listed(colors: list[tuple[int, int, int]]) -> ListedColormap:
    return ListedColormap(np.array(colors) / 255)


def coregistration_chart(shifts: dict[str, dict[str, dict]]) -> str:
    """Estimated shift of each scene pair as an arrow (pixels), its sub-window spread as a
    circle; green where the shift was applied, red where it was judged unreliable."""
    pairs = [(period, pair, s) for period, by_pair in shifts.items() for pair, s in by_pair.items()]
    fig, axes = plt.subplots(1, max(len(pairs), 1), figsize=(2.6 * max(len(pairs), 1), 2.9))
    axes = np.atleast_1d(axes)
    for ax, (period, pair, shift) in zip(axes, pairs, strict=False):
        dy, dx = (float(v) for v in shift["shift"])
        color = "#176b2c" if shift.get("applied") else "#b22222"
        ax.axhline(0, color="#ccc", lw=0.8)
        ax.axvline(0, color="#ccc", lw=0.8)
        spread = shift.get("spread")
        if spread is not None and np.isfinite(spread) and spread > 0:
            ax.add_patch(Circle((dx, -dy), spread, color=color, alpha=0.2))
        ax.annotate(
            "", xy=(dx, -dy), xytext=(0, 0), arrowprops={"arrowstyle": "-|>", "color": color}
        )
        limit = max(1.0, abs(dx) + 0.5, abs(dy) + 0.5)
        ax.set_xlim(-limit, limit)
        ax.set_ylim(-limit, limit)
        ax.set_aspect("equal")
        ax.tick_params(labelsize=7)
        ax.set_xlabel("columns (px, east)", fontsize=7)
        ax.set_ylabel("rows (px, north)", fontsize=7)
        state = "applied" if shift.get("applied") else "NOT applied"
        ax.set_title(
            f"{period}: {pair.replace('_', ' ')}\n({dy:+.2f}, {dx:+.2f}) px, {state}",
            fontsize=8,
            color=color,
        )
    fig.tight_layout()
    return figure_uri(fig)


def reliability_chart(table: list[dict], title: str) -> str:
    """Observed flood share per confidence bin against the diagonal of perfect calibration."""
    fig, ax = plt.subplots(figsize=(4.2, 3.6), dpi=FIGURE_DPI)
    rows = [r for r in table if r["pixels"]]
    ax.plot([0, 100], [0, 100], color="#999", lw=1, ls="--", label="perfectly calibrated")
    ax.plot(
        [r["mean_confidence"] for r in rows],
        [r["observed_flooded_percent"] for r in rows],
        marker="o",
        color="#0070ff",
        label="observed",
    )
    ax.set_xlim(0, 100)
    ax.set_ylim(0, 100)
    ax.set_xlabel("confidence (%)", fontsize=8)
    ax.set_ylabel("pixels truly flooded (%)", fontsize=8)
    ax.set_title(title, fontsize=9)
    ax.tick_params(labelsize=7)
    ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    return figure_uri(fig)
