"""Pooled scores of every line of evidence and every baseline, on the same pixels.

Within a condition every line is scored over the same labelled pixels of the event grid:
a line with no answer at a pixel (no SAR there, a cloud over the index) counts that pixel
as not water, so a line cannot look better by answering less; its coverage says how much
it answered. The baselines are computed in the same run from the same aligned stacks:
Otsu on VV (water below), NDWI and MNDWI above their Otsu thresholds, and the log-ratio
of VV below its Otsu threshold for change, each twice: one threshold per sample (as an
analyst would set it on the scene) and one threshold for the whole set (as a dataset's
reference figures are computed).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from skimage.filters import threshold_otsu

from metaflood.core import water_map
from metaflood.core.classes import NUM_CLASSES, WATER
from metaflood.core.config import PERIODS
from metaflood.flood.change import NETWORK_NODATA
from metaflood.flood.sar_change import FLOOD_SIGNAL
from metaflood.flood.support import SUPPORT, support_lines
from metaflood.landcover.routing import ROUTE_NAMES
from metaflood.realdata.pipeline import OPTICAL_BIT, SAR_BIT, PeriodOutputs, SampleOutputs
from metaflood.training.layouts import LABEL_NONE, LABEL_WATER
from metaflood.water.evidence import MNDWI, NDWI, normalised_difference

EVIDENCE, BASELINE, ROUTE = "evidence", "baseline", "route"
# The flood extent within each case of what it rests on (`flood.support.SUPPORT`): its
# precision is how right the extent is there, its recall the share of the true flood the
# case holds (the cases' recalls add up to the extent's).
SUPPORT_KIND = "support"
EXTENT_FLOODED = 1


@dataclass
class Tally:
    """True positives, false positives and false negatives, and answered pixels."""

    tp: int = 0
    fp: int = 0
    fn: int = 0
    labelled: int = 0
    answered: int = 0

    def add(self, predicted: np.ndarray, answered: np.ndarray, label: np.ndarray) -> None:
        known = label != LABEL_NONE
        truth = known & (label == LABEL_WATER)
        hit = known & predicted & answered
        self.tp += int((hit & truth).sum())
        self.fp += int((hit & ~truth).sum())
        self.fn += int((truth & ~hit).sum())
        self.labelled += int(known.sum())
        self.answered += int((known & answered).sum())

    def merge(self, other: Tally) -> None:
        """Pool another tally's pixels into this one."""
        self.tp += other.tp
        self.fp += other.fp
        self.fn += other.fn
        self.labelled += other.labelled
        self.answered += other.answered

    @property
    def iou(self) -> float:
        union = self.tp + self.fp + self.fn
        return self.tp / union if union else float("nan")

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else float("nan")

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else float("nan")

    @property
    def coverage(self) -> float:
        return self.answered / self.labelled if self.labelled else float("nan")


@dataclass
class PooledThreshold:
    """One Otsu threshold for the whole set (as the dataset's reference figures are
    computed), from a histogram of every sample's values and labels: memory stays that of
    the histogram, however many samples pass."""

    low: float
    high: float
    bins: int = 4000
    water: np.ndarray = field(init=False)
    dry: np.ndarray = field(init=False)
    seen: Tally = field(default_factory=Tally)  # every labelled pixel added

    def __post_init__(self) -> None:
        self.water = np.zeros(self.bins, np.int64)
        self.dry = np.zeros(self.bins, np.int64)

    def add(self, values: np.ndarray, answered: np.ndarray, label: np.ndarray) -> None:
        known = label != LABEL_NONE
        use = known & answered & np.isfinite(values)
        index = np.clip(
            ((values[use] - self.low) / (self.high - self.low) * self.bins).astype(np.int64),
            0,
            self.bins - 1,
        )
        wet = label[use] == LABEL_WATER
        self.water += np.bincount(index[wet], minlength=self.bins)
        self.dry += np.bincount(index[~wet], minlength=self.bins)
        # Every labelled pixel: the water it cannot answer is missed water.
        self.seen.add(np.zeros(label.shape, bool), use, label)

    def merge(self, other: PooledThreshold) -> None:
        """Pool another sample's histogram into the set's."""
        self.water += other.water
        self.dry += other.dry
        self.seen.merge(other.seen)

    def tally(self) -> Tally:
        """Water below the set's Otsu threshold, scored over the pixels added."""
        total = self.water + self.dry
        tally = Tally(labelled=self.seen.labelled, answered=self.seen.answered)
        if total.sum() == 0:
            return tally
        centres = self.low + (np.arange(self.bins) + 0.5) * (self.high - self.low) / self.bins
        threshold = threshold_otsu(hist=(total, centres))
        below = centres < threshold
        tally.tp = int(self.water[below].sum())
        tally.fp = int(self.dry[below].sum())
        tally.fn = self.seen.fn - tally.tp
        return tally


@dataclass
class Scoreboard:
    """Tallies keyed by (target, condition, kind, line), pooled over samples, and each
    sample's own tallies (pooled IoU weighs a sample by its size; an analyst also wants
    to know how the lines fare sample by sample)."""

    tallies: dict[tuple[str, str, str, str], Tally] = field(default_factory=dict)
    pooled: dict[tuple[str, str, str, str], PooledThreshold] = field(default_factory=dict)
    per_sample: dict[str, dict[tuple[str, str, str, str], Tally]] = field(default_factory=dict)
    samples: int = 0

    def tally(self, target: str, condition: str, kind: str, line: str) -> Tally:
        return self.tallies.setdefault((target, condition, kind, line), Tally())

    def pooled_threshold(
        self, target: str, condition: str, line: str, low: float, high: float
    ) -> PooledThreshold:
        key = (target, condition, BASELINE, line)
        return self.pooled.setdefault(key, PooledThreshold(low, high))

    def add(self, result: SampleOutputs) -> None:
        """Score one sample, keep its own tallies and pool them into the set's."""
        one = Scoreboard()
        score_water(one, result)
        score_flood(one, result)
        for key, tally in one.tallies.items():
            self.tally(*key).merge(tally)
        for key, pooled in one.pooled.items():
            self.pooled.setdefault(key, PooledThreshold(pooled.low, pooled.high)).merge(pooled)
        self.per_sample[result.sample_id] = one.tallies
        self.samples += 1

    def median_sample_iou(self, key: tuple[str, str, str, str]) -> float:
        """The median of the samples' own IoU (samples with neither truth nor answer of
        the class have none); NaN for the set-wide thresholds, which have no per-sample
        value."""
        values = [t[key].iou for t in self.per_sample.values() if key in t]
        values = [v for v in values if not np.isnan(v)]
        return float(np.median(values)) if values else float("nan")

    def rows(self) -> list[dict]:
        tallies = self.tallies | {key: p.tally() for key, p in self.pooled.items()}
        return [
            score_row(key, t)
            | {
                "coverage": t.coverage,
                "median_sample_iou": self.median_sample_iou(key),
                "labelled_pixels": t.labelled,
            }
            for key, t in tallies.items()
        ]

    def sample_rows(self) -> list[dict]:
        """One row per sample and line: its IoU, precision, recall and the counts behind them
        (so any subset of samples can be pooled again)."""
        return [
            {"sample": sample}
            | score_row(key, t)
            | {
                "true_positives": t.tp,
                "false_positives": t.fp,
                "false_negatives": t.fn,
                "labelled_pixels": t.labelled,
            }
            for sample, tallies in self.per_sample.items()
            for key, t in tallies.items()
        ]


KEY_FIELDS = ("target", "condition", "kind", "line")
SCORE_FIELDS = ("iou", "precision", "recall")


def score_row(key: tuple[str, str, str, str], tally: Tally) -> dict:
    """A table row's key fields and scores."""
    return dict(zip(KEY_FIELDS, key, strict=True)) | {f: getattr(tally, f) for f in SCORE_FIELDS}


def otsu_below(values: np.ndarray, usable: np.ndarray) -> np.ndarray:
    """Pixels below the Otsu threshold of the usable values (none when too few differ)."""
    pixels = values[usable & np.isfinite(values)]
    if pixels.size < 2 or np.ptp(pixels) == 0:
        return np.zeros(values.shape, bool)
    return usable & (values < threshold_otsu(pixels))


def _band(stack: np.ndarray, names: list[str], name: str) -> np.ndarray | None:
    return stack[names.index(name)] if name in names else None


# Value ranges of the set-wide thresholds' histograms: backscatter (dB), an index
# (negated: water is below), a log-ratio (dB).
RANGES = {"VV": (-50.0, 20.0), "index": (-1.0, 1.0), "ratio": (-40.0, 40.0)}


def baseline_values(
    stack: np.ndarray, names: list[str], valid: np.ndarray
) -> dict[str, tuple[np.ndarray, np.ndarray, str]]:
    """Each baseline's values (water below its threshold), where it answers, and which
    range its set-wide histogram takes: VV backscatter, and NDWI and MNDWI negated."""
    sar_ok = (valid != 255) & (valid & SAR_BIT).astype(bool)
    opt_ok = (valid != 255) & (valid & OPTICAL_BIT).astype(bool)
    out = {}
    vv = _band(stack, names, "VV")
    if vv is not None and sar_ok.any():
        out["VV"] = (vv, sar_ok, "VV")
    for index in (NDWI, MNDWI):
        wet, dry = (_band(stack, names, b) for b in index.bands)
        if wet is not None and dry is not None and opt_ok.any():
            out[index.name] = (-normalised_difference(wet, dry), opt_ok, "index")
    return out


BASELINE_NAMES = {"VV": "Otsu on VV", "NDWI": "NDWI > Otsu", "MNDWI": "MNDWI > Otsu"}
PER_SAMPLE, FOR_THE_SET = "per sample", "one threshold for the set"


def baseline_line(name: str, how: str) -> str:
    """A baseline's line: its name and whether its threshold is per sample or set-wide."""
    return f"{BASELINE_NAMES[name]} ({how})"


def water_baselines(
    stack: np.ndarray, names: list[str], valid: np.ndarray
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Each baseline's water map (its Otsu threshold on this sample) and where it answers."""
    return {
        baseline_line(name, PER_SAMPLE): (otsu_below(values, answered), answered)
        for name, (values, answered, _) in baseline_values(stack, names, valid).items()
    }


def water_lines(outputs: PeriodOutputs) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The workflow's own lines of water evidence: (water map, where it answers)."""
    mapped = outputs.classes < NUM_CLASSES
    margins = outputs.evidence
    index_ok = np.isfinite(margins[2])
    return {
        "land cover (MetaRS water)": (mapped & (outputs.classes == WATER), mapped),
        "SAR water": (outputs.sar_water == 1, outputs.sar_water != 255),
        "optical water index (MNDWI, else NDWI)": (index_ok & (margins[2] > 0), index_ok),
        "fused water map": (
            water_map.is_water(outputs.water),
            outputs.water != water_map.NODATA,
        ),
    }


def score_water(board: Scoreboard, result: SampleOutputs) -> None:
    for condition, periods in result.periods.items():
        for period, label in result.water_labels.items():
            outputs = periods[period]
            target = f"water ({period})"
            lines = water_lines(outputs)
            for line, (predicted, answered) in lines.items():
                board.tally(target, condition, EVIDENCE, line).add(predicted, answered, label)
            land_cover, mapped = lines["land cover (MetaRS water)"]
            for code, name in ROUTE_NAMES.items():
                on_route = mapped & (outputs.route == code)
                if on_route.any():
                    board.tally(target, condition, ROUTE, f"land cover, {name} head").add(
                        land_cover, on_route, np.where(on_route, label, LABEL_NONE)
                    )
            stack, names = result.stacks[period], result.bands[period]
            for line, (predicted, answered) in water_baselines(stack, names, outputs.valid).items():
                board.tally(target, condition, BASELINE, line).add(predicted, answered, label)
            for name, (values, answered, span) in baseline_values(
                stack, names, outputs.valid
            ).items():
                line = baseline_line(name, FOR_THE_SET)
                board.pooled_threshold(target, condition, line, *RANGES[span]).add(
                    values, answered, label
                )


def log_ratio(result: SampleOutputs, condition: str) -> tuple[np.ndarray, np.ndarray] | None:
    """Post- minus pre-event VV (dB), and where both periods have SAR."""
    pre, post = (result.periods[condition][p] for p in PERIODS)
    vv_pre = _band(result.stacks["pre"], result.bands["pre"], "VV")
    vv_post = _band(result.stacks["post"], result.bands["post"], "VV")
    if vv_pre is None or vv_post is None:
        return None
    sar_ok = ((pre.valid & SAR_BIT) & (post.valid & SAR_BIT)).astype(bool)
    sar_ok &= (pre.valid != 255) & (post.valid != 255)
    return vv_post - vv_pre, sar_ok


def flood_baselines(
    result: SampleOutputs, condition: str
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    pre, post = (result.periods[condition][p] for p in PERIODS)
    out = {}
    ratio = log_ratio(result, condition)
    if ratio is not None and ratio[1].any():
        out["log-ratio Otsu (VV, per sample)"] = (otsu_below(*ratio), ratio[1])
    opt = {}
    for period, outputs in (("pre", pre), ("post", post)):
        lines = water_baselines(result.stacks[period], result.bands[period], outputs.valid)
        opt[period] = lines.get(baseline_line("MNDWI", PER_SAMPLE)) or lines.get(
            baseline_line("NDWI", PER_SAMPLE)
        )
    if opt["pre"] is not None and opt["post"] is not None:
        answered = opt["pre"][1] & opt["post"][1]
        out["water index change (Otsu, per sample)"] = (
            opt["post"][0] & ~opt["pre"][0],
            answered,
        )
    return out


def score_flood(board: Scoreboard, result: SampleOutputs) -> None:
    label = result.flood_label
    if label is None:
        return
    for condition, products in result.flood.items():
        pre, post = (result.periods[condition][p] for p in PERIODS)
        target = "flood"
        mapped = (pre.classes < NUM_CLASSES) & (post.classes < NUM_CLASSES)
        water_known = (pre.water != water_map.NODATA) & (post.water != water_map.NODATA)
        lines = {
            "land-cover change": (
                mapped & (post.classes == WATER) & (pre.classes != WATER),
                mapped,
            ),
            "SAR change": (products["sar_change"] == FLOOD_SIGNAL, products["sar_change"] != 255),
            "fused water change": (
                water_map.new_water(pre.water, post.water),
                water_known,
            ),
            f"flood extent (confidence >= {products['flooded_min_confidence']})": (
                products["extent"] == EXTENT_FLOODED,
                products["extent"] != 255,
            ),
        }
        if products.get("network") is not None:
            network = products["network"]
            lines["flood network (probability >= 50)"] = (
                (network != NETWORK_NODATA) & (network >= 50),
                network != NETWORK_NODATA,
            )
        for line, (predicted, answered) in lines.items():
            board.tally(target, condition, EVIDENCE, line).add(predicted, answered, label)
        flooded = products["extent"] == EXTENT_FLOODED
        cases = support_lines([pre.water, post.water], products["sar_change"])
        for name, case in zip(SUPPORT, cases, strict=True):
            board.tally(target, condition, SUPPORT_KIND, f"flood extent, {name}").add(
                flooded, case & (products["extent"] != 255), label
            )
        for line, (predicted, answered) in flood_baselines(result, condition).items():
            board.tally(target, condition, BASELINE, line).add(predicted, answered, label)
        ratio = log_ratio(result, condition)
        if ratio is not None:
            board.pooled_threshold(
                target,
                condition,
                "log-ratio Otsu (VV, one threshold for the set)",
                *RANGES["ratio"],
            ).add(*ratio, label)
