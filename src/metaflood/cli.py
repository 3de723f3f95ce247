"""`metaflood <step>`: the entry points the Snakemake rules call.

Each subcommand parses paths and a JSON slice of the configuration, then calls one
function of the package. Expected failures (MetafloodError) print one clear line and
exit with status 1; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable
from pathlib import Path

from metaflood.errors import MetafloodError

log = logging.getLogger("metaflood")


def _json(text: str) -> dict:
    return json.loads(text)


def cmd_check_config(args: argparse.Namespace) -> None:
    from metaflood.workflow import check_config_file

    config = check_config_file(args.path)
    print(f"{args.path}: valid ({', '.join(config['events'])})")


def cmd_demo(args: argparse.Namespace) -> None:
    from metaflood.demo import build_demo_event

    build_demo_event(args.event_json, args.event, Path(args.out))


def cmd_search_scenes(args: argparse.Namespace) -> None:
    from metaflood.acquire import search_scenes

    search_scenes(
        args.event_json,
        args.event,
        demo_catalog=args.demo_catalog,
        cache_dir=Path(args.cache),
        out=Path(args.out),
        workers=args.threads,
    )


def cmd_acquire(args: argparse.Namespace) -> None:
    from metaflood.acquire import acquire_period

    acquire_period(
        args.event_json,
        args.event,
        args.period,
        selection=Path(args.selection),
        cache_dir=Path(args.cache),
        out_sar=Path(args.sar),
        out_optical=Path(args.optical),
        out_optical_mask=Path(args.optical_mask),
        out_scenes=Path(args.scenes),
        workers=args.threads,
    )


def cmd_coregister(args: argparse.Namespace) -> None:
    from metaflood.coregister import coregister_period

    coregister_period(
        args.event_json,
        args.event,
        args.period,
        sar=Path(args.sar),
        optical=Path(args.optical),
        optical_mask=Path(args.optical_mask),
        reference=Path(args.reference),
        out_stack=Path(args.out_stack),
        out_valid=Path(args.out_valid),
        out_report=Path(args.out_report),
    )


def cmd_train(args: argparse.Namespace) -> None:
    from metaflood.train import train_model

    train_model(
        args.model_json,
        args.train_json,
        Path(args.out),
        Path(args.metrics),
        threads=args.threads,
        log=lambda msg: print(msg, flush=True),
    )


def cmd_landcover(args: argparse.Namespace) -> None:
    from metaflood.infer import predict_scene

    model = args.model_json
    summary = predict_scene(
        Path(args.stack),
        Path(args.valid),
        Path(args.checkpoint),
        Path(args.out_class),
        Path(args.out_proba),
        Path(args.out_route),
        tile=model.get("tile", 256),
        overlap=model.get("overlap", 32),
        batch_size=model.get("batch_size", 4),
        device=model.get("device", "auto"),
        threads=args.threads,
    )
    print(json.dumps(summary, indent=2))


def cmd_change(args: argparse.Namespace) -> None:
    from metaflood.change import map_flood

    map_flood(
        Path(args.pre),
        Path(args.post),
        out_extent=Path(args.out_extent),
        out_polygons=Path(args.out_polygons),
        out_transitions=Path(args.out_transitions),
        min_area_m2=args.change_json.get("min_area_m2", 200.0),
    )


def cmd_validate(args: argparse.Namespace) -> None:
    from metaflood.validate import validate_against_truth

    result = validate_against_truth(
        Path(args.extent), Path(args.pre), Path(args.post), Path(args.truth_dir), Path(args.out)
    )
    print(json.dumps(result, indent=2))


def cmd_stats(args: argparse.Namespace) -> None:
    from metaflood.stats import write_stats

    write_stats(
        args.event,
        args.config_json,
        extent=Path(args.extent),
        polygons=Path(args.polygons),
        transitions=Path(args.transitions),
        landcover=[Path(p) for p in args.landcover],
        routes=[Path(p) for p in args.routes],
        scenes=[Path(p) for p in args.scenes],
        coregistration=[Path(p) for p in args.coregistration],
        checkpoint=Path(args.checkpoint),
        validation=Path(args.validation) if args.validation else None,
        out=Path(args.out),
    )


def cmd_report(args: argparse.Namespace) -> None:
    from metaflood.report import write_report

    write_report(
        args.event,
        stacks=[Path(p) for p in args.stacks],
        valid=[Path(p) for p in args.valid],
        landcover=[Path(p) for p in args.landcover],
        extent=Path(args.extent),
        stats=Path(args.stats),
        out=Path(args.out),
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="metaflood", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    def add(name: str, func: Callable, help: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help)
        p.set_defaults(func=func)
        return p

    p = add("check-config", cmd_check_config, "check a configuration file, with line numbers")
    p.add_argument("path")

    p = add("demo", cmd_demo, "generate the embedded demo event as a local STAC catalog")
    p.add_argument("--event", required=True)
    p.add_argument("--event-json", type=_json, required=True)
    p.add_argument("--out", required=True)

    p = add("search-scenes", cmd_search_scenes, "search the sources and choose the scenes")
    p.add_argument("--event", required=True)
    p.add_argument("--event-json", type=_json, required=True)
    p.add_argument("--demo-catalog")
    p.add_argument("--cache", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--threads", type=int, default=4)

    p = add("acquire", cmd_acquire, "read the chosen scenes of one period")
    p.add_argument("--event", required=True)
    p.add_argument("--event-json", type=_json, required=True)
    p.add_argument("--period", choices=("pre", "post"), required=True)
    p.add_argument("--selection", required=True)
    p.add_argument("--cache", required=True)
    p.add_argument("--threads", type=int, default=4)
    for name in ("--sar", "--optical", "--optical-mask", "--scenes"):
        p.add_argument(name, required=True)

    p = add("coregister", cmd_coregister, "put one period on the event grid")
    p.add_argument("--event", required=True)
    p.add_argument("--event-json", type=_json, required=True)
    p.add_argument("--period", choices=("pre", "post"), required=True)
    for name in ("--sar", "--optical", "--optical-mask", "--reference"):
        p.add_argument(name, required=True)
    for name in ("--out-stack", "--out-valid", "--out-report"):
        p.add_argument(name, required=True)

    p = add("train", cmd_train, "train MetaRS on synthetic tiles")
    p.add_argument("--model-json", type=_json, required=True)
    p.add_argument("--train-json", type=_json, required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--metrics", required=True)
    p.add_argument("--threads", type=int, default=1)

    p = add("landcover", cmd_landcover, "routed MetaRS inference over one period")
    p.add_argument("--model-json", type=_json, default={})
    for name in ("--stack", "--valid", "--checkpoint"):
        p.add_argument(name, required=True)
    for name in ("--out-class", "--out-proba", "--out-route"):
        p.add_argument(name, required=True)
    p.add_argument("--threads", type=int, default=1)

    p = add("change", cmd_change, "flood extent, polygons and transitions")
    p.add_argument("--change-json", type=_json, default={})
    for name in ("--pre", "--post", "--out-extent", "--out-polygons", "--out-transitions"):
        p.add_argument(name, required=True)

    p = add("validate", cmd_validate, "compare the flood extent with the demo truth")
    for name in ("--extent", "--pre", "--post", "--truth-dir", "--out"):
        p.add_argument(name, required=True)

    p = add("stats", cmd_stats, "flood statistics, coverage and provenance")
    p.add_argument("--event", required=True)
    p.add_argument("--config-json", type=_json, required=True)
    for name in ("--extent", "--polygons", "--transitions", "--checkpoint", "--out"):
        p.add_argument(name, required=True)
    for name in ("--landcover", "--routes", "--scenes", "--coregistration"):
        p.add_argument(name, nargs=2, required=True, metavar=("PRE", "POST"))
    p.add_argument("--validation")

    p = add("report", cmd_report, "self-contained HTML report")
    p.add_argument("--event", required=True)
    for name in ("--stacks", "--valid", "--landcover"):
        p.add_argument(name, nargs=2, required=True, metavar=("PRE", "POST"))
    for name in ("--extent", "--stats", "--out"):
        p.add_argument(name, required=True)
    return parser


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    args = _parser().parse_args(argv)
    try:
        args.func(args)
    except MetafloodError as err:
        print(f"metaflood {args.command}: error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
