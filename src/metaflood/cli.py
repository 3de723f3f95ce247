"""`metaflood <command>`: the commands a person runs by hand (the rules run scripts).

Each command is a function beside the function that declares its options; settings come
from a configuration file (`--config`, checked and filled with the schema's defaults),
never from option defaults of their own. Expected failures (MetafloodError) print one
clear line and exit with status 1; anything else is a bug and keeps its traceback.
Each command imports its stage inside its function, so that `metaflood check-config`
or `--help` answers without loading PyTorch; no import here hides a cycle (the import
contracts in pyproject.toml are checked by the tests).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from metaflood.core.errors import ConfigError, MetafloodError

log = logging.getLogger("metaflood")


@dataclass(frozen=True)
class Command:
    run: Callable[[argparse.Namespace], None]
    options: Callable[[argparse.ArgumentParser], None]
    help: str


COMMANDS: dict[str, Command] = {}


def command(name: str, help: str, options: Callable[[argparse.ArgumentParser], None]):
    """Register `run` as `metaflood <name>`, its options declared by `options`."""

    def register(run: Callable[[argparse.Namespace], None]):
        COMMANDS[name] = Command(run, options, help)
        return run

    return register


def read_config(path: str | Path) -> dict:
    """A configuration file as the workflow sees it: checked, the schema's defaults filled."""
    from metaflood.core.settings import apply_defaults
    from metaflood.workflow import check_config_file

    return apply_defaults(check_config_file(path))


def _config_option(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument("--config", default="config.yaml", help=f"{what} (default: %(default)s)")


# check-config


def _check_config_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("path")


@command(
    "check-config",
    "check a configuration file (a YAML error with its line)",
    _check_config_options,
)
def cmd_check_config(args: argparse.Namespace) -> None:
    from metaflood.workflow import check_config_file

    config = check_config_file(args.path)
    print(f"{args.path}: valid ({', '.join(config['events'])})")


# train


def _train_options(p: argparse.ArgumentParser) -> None:
    _config_option(p, "its model and train sections")
    p.add_argument("--out", required=True)
    p.add_argument("--metrics", required=True)
    p.add_argument("--threads", type=int, default=1)


@command("train", "train MetaRS as rule train does", _train_options)
def cmd_train(args: argparse.Namespace) -> None:
    from metaflood.training.train import train_model
    from metaflood.workflow import model_training_section, train_section

    config = read_config(args.config)
    train_model(
        model_training_section(config),
        train_section(config),
        Path(args.out),
        Path(args.metrics),
        threads=args.threads,
        log=lambda msg: print(msg, flush=True),
        device=config["model"]["device"],
    )


# evaluate


def _evaluate_options(p: argparse.ArgumentParser) -> None:
    _config_option(p, "its model, train and evaluate sections")
    for name in ("--out-csv", "--out-md", "--workdir"):
        p.add_argument(name, required=True)
    p.add_argument("--threads", type=int, default=1)


@command("evaluate", "MetaRS against the baselines on a held-out split", _evaluate_options)
def cmd_evaluate(args: argparse.Namespace) -> None:
    from metaflood.training.evaluate import run_evaluation
    from metaflood.workflow import train_section

    config = read_config(args.config)
    run_evaluation(
        config["model"],
        train_section(config),
        config["evaluate"],
        Path(args.out_csv),
        Path(args.out_md),
        Path(args.workdir),
        threads=args.threads,
        device=config["model"]["device"],
        log=lambda msg: print(msg, flush=True),
    )


# convert-checkpoint


def _convert_checkpoint_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--src", required=True, help="the authors' checkpoint (.pth)")
    p.add_argument("--out", required=True)
    p.add_argument(
        "--config",
        help="its model.authors_checkpoint input scales (default: the schema's)",
    )


@command(
    "convert-checkpoint", "the EarthMiss authors' weights as ours", _convert_checkpoint_options
)
def cmd_convert_checkpoint(args: argparse.Namespace) -> None:
    from metaflood.core.settings import AuthorsCheckpoint, section_defaults
    from metaflood.model.convert import convert_authors_checkpoint

    if args.config:
        section = read_config(args.config)["model"]["authors_checkpoint"]
        if section is None:
            raise ConfigError(f"{args.config}: model.authors_checkpoint is not set")
    else:
        given = {"authors_checkpoint": {"path": args.src}}
        section = section_defaults("model", given)["authors_checkpoint"]
    authors = AuthorsCheckpoint.from_section(section)
    result = convert_authors_checkpoint(
        Path(args.src),
        Path(args.out),
        sar_full_scale_db=authors.sar_full_scale_db,
        optical_full_scale=authors.optical_full_scale,
    )
    print(json.dumps(result, indent=2))


# download-checkpoint


def _download_checkpoint_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--url", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--sha256")
    p.add_argument("--retries", type=int, default=3)


@command("download-checkpoint", "download a checkpoint, with retries", _download_checkpoint_options)
def cmd_download_checkpoint(args: argparse.Namespace) -> None:
    from metaflood.model.download import download_file

    download_file(
        args.url,
        Path(args.out),
        sha256=args.sha256 or None,
        retries=args.retries,
        log=lambda msg: print(msg, flush=True),
    )


# validate


def _validate_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--event", help="a demo event run under --results")
    p.add_argument("--results", default="results")
    p.add_argument("--resources", default="resources")
    for name in ("--extent", "--confidence", "--sar-evidence", "--pre", "--post"):
        p.add_argument(name)
    p.add_argument("--support", help="what the flood rests on (default: flood/support.tif)")
    p.add_argument("--truth-dir")
    p.add_argument("--out")
    p.add_argument("--min-area-m2", type=float, help="default: change.min_area_m2 of --config")
    _config_option(p, "its change.min_area_m2, unless --min-area-m2 is given")


@command(
    "validate",
    "flood accuracy and confidence reliability against the demo truth "
    "(--event EVENT finds the products under results/)",
    _validate_options,
)
def cmd_validate(args: argparse.Namespace) -> None:
    from metaflood.core.settings import ChangeSettings
    from metaflood.flood.validate import summary_lines, validate_against_truth

    event_dir = Path(args.results) / args.event if args.event else None

    def path(given: str | None, default: str) -> Path:
        if given:
            return Path(given)
        if event_dir is None:
            raise MetafloodError("give --event, or every path")
        return event_dir / default

    if args.truth_dir:
        truth_dir = Path(args.truth_dir)
    elif args.event:
        truth_dir = Path(args.resources) / "demo" / args.event / "truth"
    else:
        raise MetafloodError("give --event, or --truth-dir and every path")
    min_area_m2 = args.min_area_m2
    if min_area_m2 is None:
        min_area_m2 = ChangeSettings.in_config(read_config(args.config)).min_area_m2
    result = validate_against_truth(
        path(args.extent, "flood/extent.tif"),
        path(args.confidence, "flood/confidence.tif"),
        path(args.sar_evidence, "flood/sar_change.tif"),
        path(args.pre, "landcover/pre.tif"),
        path(args.post, "landcover/post.tif"),
        truth_dir,
        path(args.out, "flood/validation.json"),
        support_path=path(args.support, "flood/support.tif"),
        min_area_m2=min_area_m2,
    )
    print("\n".join(summary_lines(args.event or "(paths given)", result)))


# calibrate-confidence


def _calibrate_confidence_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("events", nargs="*", help="demo event names (cases/calibration.yaml)")
    p.add_argument(
        "--real",
        nargs="+",
        default=[],
        help="evidence dumps of real sets with flood masks (benchmark-real --dump-evidence)",
    )
    p.add_argument("--results", default="results")
    p.add_argument("--resources", default="resources")
    p.add_argument("--checkpoint", help="the checkpoint the events were mapped with")
    p.add_argument("--out", required=True)


@command(
    "calibrate-confidence",
    "fit the flood confidence on held-out demo events run under --results",
    _calibrate_confidence_options,
)
def cmd_calibrate_confidence(args: argparse.Namespace) -> None:
    from metaflood.flood.calibrate import calibrate

    events = args.events
    result = calibrate(
        [Path(args.results) / e for e in events],
        [Path(args.resources) / "demo" / e / "truth" for e in events],
        Path(args.out),
        checkpoint=Path(args.checkpoint) if args.checkpoint else None,
        real=[Path(p) for p in args.real],
    )
    held_out = result["leave_one_event_out"]
    print("leave-one-event-out reliability (each event scored by a fit on the others)")
    _print_reliability(held_out["reliability"])
    for name, high in held_out["per_event"].items():
        print(f"{name}: precision at confidence >= {high['threshold']}: {high['precision']}")
    print(f"all: precision at confidence >= 80: {held_out['high_confidence']['precision']}")


def _print_reliability(rows: list[dict]) -> None:
    print(f"{'confidence':>10} {'pixels':>9} {'mean':>6} {'flooded %':>9}")
    for row in rows:
        mean = "" if row["mean_confidence"] is None else f"{row['mean_confidence']:.1f}"
        seen = "" if row["observed_flooded_percent"] is None else row["observed_flooded_percent"]
        print(f"{row['confidence']:>10} {row['pixels']:>9} {mean:>6} {seen:>9}")


# fit-flood-join


def _fit_flood_join_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "dumps",
        nargs="+",
        help="evidence dumps of benchmark-real --flood-network NETWORK --dump-evidence, on "
        "samples the network did not train on (train-flood --split fit; --split validation)",
    )
    p.add_argument("--flood-network", required=True, help="the network the dumps were mapped with")
    p.add_argument("--calibration", help="the calibration to add the join to (default: shipped)")
    p.add_argument("--out", required=True)


@command(
    "fit-flood-join",
    "fit how the flood network's probability joins the calibrated confidence",
    _fit_flood_join_options,
)
def cmd_fit_flood_join(args: argparse.Namespace) -> None:
    from metaflood.flood.calibrate import calibrate_network_join

    calibration = calibrate_network_join(
        [Path(p) for p in args.dumps],
        Path(args.flood_network),
        Path(args.out),
        base=Path(args.calibration) if args.calibration else None,
    )
    check = calibration["network_join"]["leave_one_event_out"]
    print("reliability of the join, each part of the dumps joined by a fit on the others")
    _print_reliability(check["reliability"])
    by_cut = check["flood_iou_by_cut"]
    lines = list(next(iter(by_cut.values())))
    print("flood IoU on the same parts and pixels, by where the extent is cut (percent):")
    print(f"{'cut':>5} " + " ".join(f"{line:>10}" for line in lines))
    for cut, ious in by_cut.items():
        print(f"{cut:>5} " + " ".join(f"{ious[line]:>10.4f}" for line in lines))
    high = check["high_confidence"]
    print(f"precision at confidence >= {high['threshold']}: {high['precision']}")
    print(
        f"wrote {args.out}: set it as change.calibration beside change.flood_network (and "
        "change.flooded_min_confidence at the cut the table above favours)"
    )


# benchmark-real


def _benchmark_real_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("dataset_root")
    p.add_argument("--layout", choices=("sen1floods11", "etci2021", "ombria"), required=True)
    p.add_argument(
        "--split",
        choices=("test", "train", "fit", "validation", "all"),
        default="test",
        help="test: the held-out samples of the layout's fixed split; train, and its parts fit "
        "and validation; all: every sample (a set no model trained on)",
    )
    p.add_argument("--checkpoint", default="results/models/metars.pt")
    p.add_argument("--configfile", help="model, change and coregister sections (config.yaml)")
    p.add_argument("--fusion", help="a water fusion model (default: the shipped one)")
    p.add_argument("--calibration", help="a flood confidence calibration (default: shipped)")
    p.add_argument(
        "--flood-network",
        help="a flood network checkpoint (metaflood train-flood) joined to the change stage's "
        "evidence, as change.flood_network does",
    )
    p.add_argument(
        "--cloud-cover", type=float, default=0.0, help="share of post optical under cloud"
    )
    p.add_argument("--seed", type=int, default=0, help="of the simulated clouds")
    p.add_argument(
        "--adapt",
        action="store_true",
        help="fine-tune to each sample first (model.adapt's settings), as rule adapt does",
    )
    p.add_argument("--limit", type=int, help="only the first N samples (a quick look)")
    p.add_argument("--keep", help="keep each sample's products under this folder")
    p.add_argument("--dump-evidence", help="save labelled pixels' evidence (.npz) for fitting")
    p.add_argument("--out", default="results/benchmark-real")
    p.add_argument("--threads", type=int, default=2)


@command(
    "benchmark-real",
    "a labelled real set through the workflow, scored beside the baselines of the run",
    _benchmark_real_options,
)
def cmd_benchmark_real(args: argparse.Namespace) -> None:
    from metaflood.realdata.benchmark import BenchmarkRun, run_benchmark, settings_from

    settings = settings_from(
        args.checkpoint,
        args.configfile,
        fusion=args.fusion,
        calibration=args.calibration,
        flood_network=args.flood_network,
        cloud_cover=args.cloud_cover,
        threads=args.threads,
        seed=args.seed,
        adapt=args.adapt,
    )
    run = BenchmarkRun(
        root=Path(args.dataset_root),
        layout=args.layout,
        split=None if args.split == "all" else args.split,
        out=Path(args.out),
        settings=settings,
        limit=args.limit,
        keep=Path(args.keep) if args.keep else None,
        evidence_dump=Path(args.dump_evidence) if args.dump_evidence else None,
    )
    board = run_benchmark(run)
    print((Path(args.out) / "benchmark.md").read_text())
    log.info("%d samples scored", board.samples)


# fit-water-fusion


def _fit_water_fusion_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("dumps", nargs="*", help=".npz files of benchmark-real --dump-evidence")
    p.add_argument("--events", nargs="*", default=[], help="demo events run under --results")
    p.add_argument("--results", default="results")
    p.add_argument("--resources", default="resources")
    p.add_argument("--checkpoint", help="the checkpoint the evidence was mapped with")
    p.add_argument(
        "--keep-from",
        help="a fusion to take the variants from that these sets cannot fit (a SAR-only "
        "set fits no optical variant); they are marked kept_from",
    )
    p.add_argument("--out", required=True)


@command("fit-water-fusion", "fit the water fusion on evidence dumps", _fit_water_fusion_options)
def cmd_fit_water_fusion(args: argparse.Namespace) -> None:
    from metaflood.water.fit import fit_from_dumps

    fusion = fit_from_dumps(
        [Path(p) for p in args.dumps],
        Path(args.out),
        events=[
            (Path(args.results) / e, Path(args.resources) / "demo" / e / "truth")
            for e in args.events
        ],
        checkpoint=Path(args.checkpoint) if args.checkpoint else None,
        keep_from=Path(args.keep_from) if args.keep_from else None,
    )
    print(json.dumps(fusion, indent=2))


# train-flood


def _train_flood_options(p: argparse.ArgumentParser) -> None:
    # The choices and defaults are FloodRecipe's, written out so that --help loads no
    # PyTorch: the recipe that did best on OMBRIA's held-out triplets.
    p.add_argument("dataset_root", help="an OMBRIA-layout dataset root (its train split)")
    p.add_argument("--out", required=True, help="the checkpoint to write (.pt)")
    p.add_argument(
        "--network",
        choices=("early_fusion", "unet"),
        default="unet",
        help="unet: a four-level U-Net at full resolution; early_fusion: the compact MetaRS's "
        "encoder and decoder (default: %(default)s)",
    )
    p.add_argument(
        "--drop",
        choices=("any", "optical"),
        default="optical",
        help="optical: the optical bands dropped half of the time; any: either modality, "
        "a third of the time each (default: %(default)s)",
    )
    p.add_argument(
        "--dice",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="a soft Dice term on the flood class beside the cross-entropy (default: on)",
    )
    p.add_argument(
        "--presence-band",
        action="store_true",
        help="a band of ones with the optical image: the network is told it is there",
    )
    p.add_argument(
        "--statistics",
        choices=("moments", "robust"),
        default="moments",
        help="each image standardised by its mean and standard deviation, or median and "
        "robust spread (default: %(default)s)",
    )
    p.add_argument("--iterations", type=int, default=1500)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--split",
        choices=("train", "fit"),
        default="train",
        help="train: the whole training split; fit: without its validation part, on which "
        "the network's join to the evidence is then fitted (default: %(default)s)",
    )
    p.add_argument("--threads", type=int, default=2)


@command(
    "train-flood",
    "train the flood network on an OMBRIA-layout set's own flood masks",
    _train_flood_options,
)
def cmd_train_flood(args: argparse.Namespace) -> None:
    from metaflood.training.flood import FloodRecipe, train_flood

    summary = train_flood(
        Path(args.dataset_root),
        Path(args.out),
        FloodRecipe.from_options(args),
        threads=args.threads,
        log=lambda msg: print(msg, flush=True),
        split=args.split,
    )
    print(json.dumps(summary, indent=2))


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="metaflood", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name, cmd in COMMANDS.items():
        p = sub.add_parser(name, help=cmd.help)
        cmd.options(p)
        p.set_defaults(func=cmd.run)
    return parser


def configure_logging() -> None:
    """Log lines to stderr (the job's log), with credentials removed from every one:
    libraries log the URLs they fetch (urllib3 its retries, with the query)."""
    from metaflood.core.redact import RedactingFilter

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())


def main(argv: list[str] | None = None) -> int:
    configure_logging()
    args = _parser().parse_args(argv)
    try:
        args.func(args)
    except MetafloodError as err:
        from metaflood.core.redact import redact_text

        print(f"metaflood {args.command}: error: {redact_text(err)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
