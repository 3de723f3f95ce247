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

from metaflood.core.errors import MetafloodError

log = logging.getLogger("metaflood")


def _json(text: str) -> dict:
    return json.loads(text)


def cmd_check_config(args: argparse.Namespace) -> None:
    from metaflood.workflow import check_config_file

    config = check_config_file(args.path)
    print(f"{args.path}: valid ({', '.join(config['events'])})")


def cmd_demo(args: argparse.Namespace) -> None:
    from metaflood.demo.events import build_demo_event

    build_demo_event(args.event_json, args.event, Path(args.out))


def cmd_search_scenes(args: argparse.Namespace) -> None:
    from metaflood.acquire.stage import search_scenes

    search_scenes(
        args.event_json,
        args.event,
        demo_catalog=args.demo_catalog,
        cache_dir=Path(args.cache),
        out=Path(args.out),
        workers=args.threads,
    )


def cmd_acquire(args: argparse.Namespace) -> None:
    from metaflood.acquire.stage import acquire_period

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
    from metaflood.coregister.scenes import Settings
    from metaflood.coregister.stage import coregister_period

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
        settings=Settings.from_config(args.coregister_json, threads=args.threads),
    )


def _tile(args: argparse.Namespace, height: int, width: int):
    from metaflood.core.tiling import TilingSettings, find_tile, tile_layout

    tiling = TilingSettings.from_config(args.tiling_json)
    return find_tile(tile_layout(height, width, tiling.tile_px, tiling.overlap_px), args.tile)


def _shape_of(path: str) -> tuple[int, int]:
    from metaflood.core.raster import open_checked

    with open_checked(path) as src:
        return src.height, src.width


def cmd_coregister_shifts(args: argparse.Namespace) -> None:
    from metaflood.coregister.scenes import Settings
    from metaflood.coregister.stage import estimate_period

    estimate_period(
        args.event_json,
        args.event,
        args.period,
        sar=Path(args.sar),
        optical=Path(args.optical),
        optical_mask=Path(args.optical_mask),
        reference=Path(args.reference),
        out_shifts=Path(args.out),
        settings=Settings.from_config(args.coregister_json, threads=args.threads),
    )


def cmd_coregister_tile(args: argparse.Namespace) -> None:
    from metaflood.core.config import event_grid
    from metaflood.coregister.scenes import Settings
    from metaflood.coregister.stage import coregister_tile

    grid = event_grid(args.event_json, f"events.{args.event}")
    coregister_tile(
        args.event_json,
        args.event,
        args.period,
        sar=Path(args.sar),
        optical=Path(args.optical),
        optical_mask=Path(args.optical_mask),
        shifts=Path(args.shifts),
        window=_tile(args, grid.height, grid.width).core,
        out_stack=Path(args.out_stack),
        out_valid=Path(args.out_valid),
        settings=Settings.from_config(args.coregister_json, threads=args.threads),
    )


def cmd_coregister_gather(args: argparse.Namespace) -> None:
    from metaflood.coregister.gather import gather_aligned

    gather_aligned(
        Path(args.shifts),
        [Path(p) for p in args.stacks],
        [Path(p) for p in args.valid],
        out_stack=Path(args.out_stack),
        out_valid=Path(args.out_valid),
        out_report=Path(args.out_report),
        where=f"events.{args.event}.{args.period}",
        threads=args.threads,
    )


def cmd_train(args: argparse.Namespace) -> None:
    from metaflood.training.train import train_model

    train_model(
        args.model_json,
        args.train_json,
        Path(args.out),
        Path(args.metrics),
        threads=args.threads,
        log=lambda msg: print(msg, flush=True),
        device=args.model_json.get("device", "auto"),
    )


def cmd_evaluate(args: argparse.Namespace) -> None:
    from metaflood.training.evaluate import run_evaluation

    run_evaluation(
        args.model_json,
        args.train_json,
        args.evaluate_json,
        Path(args.out_csv),
        Path(args.out_md),
        Path(args.workdir),
        threads=args.threads,
        device=args.model_json.get("device", "auto"),
        log=lambda msg: print(msg, flush=True),
    )


def cmd_convert_checkpoint(args: argparse.Namespace) -> None:
    from metaflood.model.convert import convert_authors_checkpoint

    result = convert_authors_checkpoint(
        Path(args.src),
        Path(args.out),
        sar_full_scale_db=args.sar_full_scale_db,
        optical_full_scale=args.optical_full_scale,
    )
    print(json.dumps(result, indent=2))


def cmd_download_checkpoint(args: argparse.Namespace) -> None:
    from metaflood.model.download import download_file

    download_file(
        args.url,
        Path(args.out),
        sha256=args.sha256 or None,
        retries=args.retries,
        log=lambda msg: print(msg, flush=True),
    )


def cmd_landcover(args: argparse.Namespace) -> None:
    from metaflood.landcover.infer import predict_scene

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


def cmd_landcover_tile(args: argparse.Namespace) -> None:
    from metaflood.landcover.infer import predict_tile

    model = args.model_json
    summary = predict_tile(
        Path(args.stack),
        Path(args.valid),
        Path(args.checkpoint),
        _tile(args, *_shape_of(args.stack)).padded,
        Path(args.out_proba),
        Path(args.out_route),
        tile=model.get("tile", 256),
        overlap=model.get("overlap", 32),
        batch_size=model.get("batch_size", 4),
        device=model.get("device", "auto"),
        threads=args.threads,
    )
    print(json.dumps(summary, indent=2))


def cmd_landcover_gather(args: argparse.Namespace) -> None:
    from metaflood.core.tiling import TilingSettings
    from metaflood.landcover.gather import gather_landcover

    summary = gather_landcover(
        [Path(p) for p in args.proba],
        [Path(p) for p in args.route],
        TilingSettings.from_config(args.tiling_json),
        out_class=Path(args.out_class),
        out_proba=Path(args.out_proba),
        out_route=Path(args.out_route),
        threads=args.threads,
        scheduler=args.compute_json.get("scheduler", "threads"),
    )
    print(json.dumps(summary, indent=2))


def cmd_sar_thresholds(args: argparse.Namespace) -> None:
    from metaflood.flood.sar_tiled import global_thresholds

    found = global_thresholds(
        [Path(p) for p in args.stacks],
        [Path(p) for p in args.valid],
        change=args.change_json,
        out=Path(args.out),
    )
    print(json.dumps(found, indent=2))


def cmd_sar_change_tile(args: argparse.Namespace) -> None:
    from metaflood.flood.sar_tiled import sar_change_tile

    sar_change_tile(
        [Path(p) for p in args.stacks],
        [Path(p) for p in args.valid],
        change=args.change_json,
        thresholds=Path(args.thresholds),
        window=_tile(args, *_shape_of(args.stacks[0])).core,
        out_evidence=Path(args.out_evidence),
        out_ratio=Path(args.out_ratio),
    )


def cmd_sar_change_gather(args: argparse.Namespace) -> None:
    from metaflood.flood.sar_tiled import gather_sar_change

    summary = gather_sar_change(
        [Path(p) for p in args.evidence],
        [Path(p) for p in args.ratio],
        change=args.change_json,
        thresholds=Path(args.thresholds),
        out_evidence=Path(args.out_evidence),
        out_ratio=Path(args.out_ratio),
        out_summary=Path(args.out_summary),
        threads=args.threads,
    )
    print(json.dumps(summary, indent=2))


def cmd_sar_change(args: argparse.Namespace) -> None:
    from metaflood.flood.sar_change import map_sar_change

    summary = map_sar_change(
        [Path(p) for p in args.stacks],
        [Path(p) for p in args.valid],
        change=args.change_json,
        out_evidence=Path(args.out_evidence),
        out_ratio=Path(args.out_ratio),
        out_summary=Path(args.out_summary),
    )
    print(json.dumps(summary, indent=2))


def cmd_change(args: argparse.Namespace) -> None:
    from metaflood.flood.change import map_flood

    change = args.change_json
    summary = map_flood(
        [Path(p) for p in args.landcover],
        [Path(p) for p in args.water],
        post_route=Path(args.post_route),
        sar_evidence=Path(args.sar_evidence),
        sar_ratio=Path(args.sar_ratio),
        sar_summary=Path(args.sar_summary),
        calibration=Path(change["calibration"]) if change.get("calibration") else None,
        out_extent=Path(args.out_extent),
        out_confidence=Path(args.out_confidence),
        out_polygons=Path(args.out_polygons),
        out_transitions=Path(args.out_transitions),
        min_area_m2=change.get("min_area_m2", 200.0),
    )
    print(json.dumps(summary, indent=2))


def cmd_validate(args: argparse.Namespace) -> None:
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
    result = validate_against_truth(
        path(args.extent, "flood/extent.tif"),
        path(args.confidence, "flood/confidence.tif"),
        path(args.sar_evidence, "flood/sar_change.tif"),
        path(args.pre, "landcover/pre.tif"),
        path(args.post, "landcover/post.tif"),
        truth_dir,
        path(args.out, "flood/validation.json"),
        min_area_m2=args.min_area_m2,
    )
    print("\n".join(summary_lines(args.event or "(paths given)", result)))


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
    print(f"{'confidence':>10} {'pixels':>9} {'mean':>6} {'flooded %':>9}")
    for row in held_out["reliability"]:
        mean = "" if row["mean_confidence"] is None else f"{row['mean_confidence']:.1f}"
        seen = "" if row["observed_flooded_percent"] is None else row["observed_flooded_percent"]
        print(f"{row['confidence']:>10} {row['pixels']:>9} {mean:>6} {seen:>9}")
    for name, high in held_out["per_event"].items():
        print(f"{name}: precision at confidence >= {high['threshold']}: {high['precision']}")
    print(f"all: precision at confidence >= 80: {held_out['high_confidence']['precision']}")


def cmd_stats(args: argparse.Namespace) -> None:
    from metaflood.flood.stats import write_stats

    calibration = args.config_json.get("change", {}).get("calibration")
    write_stats(
        args.event,
        args.config_json,
        extent=Path(args.extent),
        confidence=Path(args.confidence),
        polygons=Path(args.polygons),
        transitions=Path(args.transitions),
        landcover=[Path(p) for p in args.landcover],
        routes=[Path(p) for p in args.routes],
        scenes=[Path(p) for p in args.scenes],
        coregistration=[Path(p) for p in args.coregistration],
        sar_summary=Path(args.sar_summary),
        water=[Path(p) for p in args.water],
        checkpoint=Path(args.checkpoint),
        calibration=Path(calibration) if calibration else None,
        validation=Path(args.validation) if args.validation else None,
        out=Path(args.out),
        out_impact=Path(args.out_impact),
    )


def _report_inputs(args: argparse.Namespace):
    from metaflood.report.maps import ReportInputs

    return ReportInputs(
        stacks=[Path(p) for p in args.stacks],
        valid=[Path(p) for p in args.valid],
        landcover=[Path(p) for p in args.landcover],
        extent=Path(args.extent),
        confidence=Path(args.confidence),
        sar_evidence=Path(args.sar_evidence),
        sar_ratio=Path(args.sar_ratio),
        stats=Path(args.stats),
    )


def cmd_report(args: argparse.Namespace) -> None:
    from metaflood.report.page import write_report

    write_report(args.event, _report_inputs(args), Path(args.out))


def cmd_mapbook(args: argparse.Namespace) -> None:
    from metaflood.report.mapbook import write_mapbook

    write_mapbook(args.event, _report_inputs(args), Path(args.out))


def cmd_catalog(args: argparse.Namespace) -> None:
    from metaflood.report.products_catalog import write_catalog

    write_catalog(args.event, args.event_json, Path(args.event_dir), Path(args.out))


def cmd_adapt(args: argparse.Namespace) -> None:
    from metaflood.training.adapt import AdaptSettings, adapt_checkpoint

    summary = adapt_checkpoint(
        Path(args.checkpoint),
        [Path(p) for p in args.stacks],
        [Path(p) for p in args.valid],
        Path(args.out),
        Path(args.out_summary),
        settings=AdaptSettings.from_config(args.adapt_json),
        change=args.change_json,
        threads=args.threads,
        device=args.device,
        log=lambda message: print(message, flush=True),
    )
    print(json.dumps({k: summary[k] for k in ("adapted", "reason")}, indent=2))


def cmd_water(args: argparse.Namespace) -> None:
    from metaflood.water.stage import map_water

    summary = map_water(
        Path(args.stack),
        Path(args.valid),
        Path(args.proba),
        change=args.change_json,
        fusion=Path(args.fusion) if args.fusion else None,
        out_sar=Path(args.out_sar),
        out_evidence=Path(args.out_evidence),
        out_water=Path(args.out_water),
        out_summary=Path(args.out_summary),
    )
    print(json.dumps(summary["thresholds"], indent=2))


def cmd_benchmark_real(args: argparse.Namespace) -> None:
    from metaflood.realdata.benchmark import BenchmarkRun, run_benchmark, settings_from

    settings = settings_from(
        args.checkpoint,
        args.configfile,
        fusion=args.fusion,
        calibration=args.calibration,
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
    )
    print(json.dumps(fusion, indent=2))


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="metaflood", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    def add(
        name: str, func: Callable, help: str, *parents: argparse.ArgumentParser
    ) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help, parents=list(parents))
        p.set_defaults(func=func)
        return p

    # Options that several stages share, declared once
    event = argparse.ArgumentParser(add_help=False)
    event.add_argument("--event", required=True)
    event.add_argument("--event-json", type=_json, required=True)
    period = argparse.ArgumentParser(add_help=False)
    period.add_argument("--period", choices=("pre", "post"), required=True)

    p = add(
        "check-config", cmd_check_config, "check a configuration file (a YAML error with its line)"
    )
    p.add_argument("path")

    p = add("demo", cmd_demo, "generate the embedded demo event as a local STAC catalog", event)
    p.add_argument("--out", required=True)

    p = add("search-scenes", cmd_search_scenes, "search the sources and choose the scenes", event)
    p.add_argument("--demo-catalog")
    p.add_argument("--cache", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--threads", type=int, default=4)

    p = add("acquire", cmd_acquire, "read the chosen scenes of one period", event, period)
    p.add_argument("--selection", required=True)
    p.add_argument("--cache", required=True)
    p.add_argument("--threads", type=int, default=4)
    for name in ("--sar", "--optical", "--optical-mask", "--scenes"):
        p.add_argument(name, required=True)

    p = add("coregister", cmd_coregister, "put one period on the event grid", event, period)
    for name in ("--sar", "--optical", "--optical-mask", "--reference"):
        p.add_argument(name, required=True)
    for name in ("--out-stack", "--out-valid", "--out-report"):
        p.add_argument(name, required=True)
    p.add_argument("--coregister-json", type=_json, default={})
    p.add_argument("--threads", type=int, default=1)

    p = add(
        "coregister-shifts",
        cmd_coregister_shifts,
        "tiled: checks and shifts of a period",
        event,
        period,
    )
    for name in ("--sar", "--optical", "--optical-mask", "--reference", "--out"):
        p.add_argument(name, required=True)
    p.add_argument("--coregister-json", type=_json, default={})
    p.add_argument("--threads", type=int, default=1)

    p = add(
        "coregister-tile",
        cmd_coregister_tile,
        "tiled: one tile of a period on the grid",
        event,
        period,
    )
    for name in ("--sar", "--optical", "--optical-mask", "--shifts", "--tile"):
        p.add_argument(name, required=True)
    for name in ("--out-stack", "--out-valid"):
        p.add_argument(name, required=True)
    p.add_argument("--tiling-json", type=_json, default={})
    p.add_argument("--coregister-json", type=_json, default={})
    p.add_argument("--threads", type=int, default=1)

    p = add("coregister-gather", cmd_coregister_gather, "tiled: mosaic of a period's tiles", period)
    p.add_argument("--event", required=True)
    p.add_argument("--shifts", required=True)
    for name in ("--stacks", "--valid"):
        p.add_argument(name, nargs="+", required=True)
    for name in ("--out-stack", "--out-valid", "--out-report"):
        p.add_argument(name, required=True)
    p.add_argument("--threads", type=int, default=1)

    p = add("train", cmd_train, "train MetaRS on synthetic tiles")
    p.add_argument("--model-json", type=_json, required=True)
    p.add_argument("--train-json", type=_json, required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--metrics", required=True)
    p.add_argument("--threads", type=int, default=1)

    p = add("evaluate", cmd_evaluate, "MetaRS against the baselines on a held-out split")
    p.add_argument("--model-json", type=_json, default={})
    p.add_argument("--train-json", type=_json, default={})
    p.add_argument("--evaluate-json", type=_json, default={})
    for name in ("--out-csv", "--out-md", "--workdir"):
        p.add_argument(name, required=True)
    p.add_argument("--threads", type=int, default=1)

    p = add("convert-checkpoint", cmd_convert_checkpoint, "the EarthMiss authors' weights as ours")
    p.add_argument("--src", required=True, help="the authors' checkpoint (.pth)")
    p.add_argument("--out", required=True)
    p.add_argument("--sar-full-scale-db", type=float, default=0.0, help="dB mapped to 255")
    p.add_argument("--optical-full-scale", type=float, default=0.2, help="reflectance at 255")

    p = add("download-checkpoint", cmd_download_checkpoint, "download a checkpoint, with retries")
    p.add_argument("--url", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--sha256")
    p.add_argument("--retries", type=int, default=3)

    p = add("landcover", cmd_landcover, "routed MetaRS inference over one period")
    p.add_argument("--model-json", type=_json, default={})
    for name in ("--stack", "--valid", "--checkpoint"):
        p.add_argument(name, required=True)
    for name in ("--out-class", "--out-proba", "--out-route"):
        p.add_argument(name, required=True)
    p.add_argument("--threads", type=int, default=1)

    p = add("landcover-tile", cmd_landcover_tile, "tiled: MetaRS over one tile (and overlap)")
    p.add_argument("--model-json", type=_json, default={})
    p.add_argument("--tiling-json", type=_json, default={})
    for name in ("--stack", "--valid", "--checkpoint", "--tile", "--out-proba", "--out-route"):
        p.add_argument(name, required=True)
    p.add_argument("--threads", type=int, default=1)

    p = add("landcover-gather", cmd_landcover_gather, "tiled: blend the tiles, classes")
    p.add_argument("--tiling-json", type=_json, default={})
    p.add_argument("--compute-json", type=_json, default={})
    for name in ("--proba", "--route"):
        p.add_argument(name, nargs="+", required=True)
    for name in ("--out-class", "--out-proba", "--out-route"):
        p.add_argument(name, required=True)
    p.add_argument("--threads", type=int, default=1)

    p = add("sar-thresholds", cmd_sar_thresholds, "tiled: SAR thresholds of the whole grid")
    p.add_argument("--change-json", type=_json, default={})
    for name in ("--stacks", "--valid"):
        p.add_argument(name, nargs=2, required=True, metavar=("PRE", "POST"))
    p.add_argument("--out", required=True)

    p = add("sar-change-tile", cmd_sar_change_tile, "tiled: SAR change evidence over one tile")
    p.add_argument("--change-json", type=_json, default={})
    p.add_argument("--tiling-json", type=_json, default={})
    for name in ("--stacks", "--valid"):
        p.add_argument(name, nargs=2, required=True, metavar=("PRE", "POST"))
    for name in ("--thresholds", "--tile", "--out-evidence", "--out-ratio"):
        p.add_argument(name, required=True)

    p = add("sar-change-gather", cmd_sar_change_gather, "tiled: SAR change mosaic and summary")
    p.add_argument("--change-json", type=_json, default={})
    for name in ("--evidence", "--ratio"):
        p.add_argument(name, nargs="+", required=True)
    for name in ("--thresholds", "--out-evidence", "--out-ratio", "--out-summary"):
        p.add_argument(name, required=True)
    p.add_argument("--threads", type=int, default=1)

    p = add("sar-change", cmd_sar_change, "SAR change evidence: log-ratio, thresholds, exclusions")
    p.add_argument("--change-json", type=_json, default={})
    for name in ("--stacks", "--valid"):
        p.add_argument(name, nargs=2, required=True, metavar=("PRE", "POST"))
    for name in ("--out-evidence", "--out-ratio", "--out-summary"):
        p.add_argument(name, required=True)

    p = add("change", cmd_change, "flood extent, confidence, polygons and transitions")
    p.add_argument("--change-json", type=_json, default={})
    for name in ("--landcover", "--water"):
        p.add_argument(name, nargs=2, required=True, metavar=("PRE", "POST"))
    for name in ("--post-route", "--sar-evidence", "--sar-ratio", "--sar-summary"):
        p.add_argument(name, required=True)
    for name in ("--out-extent", "--out-confidence", "--out-polygons", "--out-transitions"):
        p.add_argument(name, required=True)

    p = add("adapt", cmd_adapt, "fine-tune the SAR head on the event's clear-optical pixels")
    p.add_argument("--adapt-json", type=_json, required=True)
    p.add_argument("--change-json", type=_json, required=True)
    for name in ("--stacks", "--valid"):
        p.add_argument(name, nargs=2, required=True, metavar=("PRE", "POST"))
    for name in ("--checkpoint", "--out", "--out-summary"):
        p.add_argument(name, required=True)
    p.add_argument("--device", default="auto")
    p.add_argument("--threads", type=int, default=1)

    p = add("water", cmd_water, "water evidence of one period: SAR water, index, fused map")
    p.add_argument("--change-json", type=_json, default={})
    p.add_argument("--fusion", help="a water fusion model (default: the shipped one)")
    for name in ("--stack", "--valid", "--proba"):
        p.add_argument(name, required=True)
    for name in ("--out-sar", "--out-evidence", "--out-water", "--out-summary"):
        p.add_argument(name, required=True)

    p = add(
        "benchmark-real",
        cmd_benchmark_real,
        "a labelled real set through the workflow, scored beside the baselines of the run",
    )
    p.add_argument("dataset_root")
    p.add_argument("--layout", choices=("sen1floods11", "etci2021", "ombria"), required=True)
    p.add_argument("--split", choices=("test", "train", "all"), default="test")
    p.add_argument("--checkpoint", default="results/models/metars.pt")
    p.add_argument("--configfile", help="model, change and coregister sections (config.yaml)")
    p.add_argument("--fusion", help="a water fusion model (default: the shipped one)")
    p.add_argument("--calibration", help="a flood confidence calibration (default: shipped)")
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

    p = add("fit-water-fusion", cmd_fit_water_fusion, "fit the water fusion on evidence dumps")
    p.add_argument("dumps", nargs="*", help=".npz files of benchmark-real --dump-evidence")
    p.add_argument("--events", nargs="*", default=[], help="demo events run under --results")
    p.add_argument("--results", default="results")
    p.add_argument("--resources", default="resources")
    p.add_argument("--checkpoint", help="the checkpoint the evidence was mapped with")
    p.add_argument("--out", required=True)

    p = add(
        "validate",
        cmd_validate,
        "flood accuracy and confidence reliability against the demo truth "
        "(--event EVENT finds the products under results/)",
    )
    p.add_argument("--event", help="a demo event run under --results")
    p.add_argument("--results", default="results")
    p.add_argument("--resources", default="resources")
    for name in ("--extent", "--confidence", "--sar-evidence", "--pre", "--post"):
        p.add_argument(name)
    p.add_argument("--truth-dir")
    p.add_argument("--out")
    p.add_argument("--min-area-m2", type=float, default=200.0)

    p = add(
        "calibrate-confidence",
        cmd_calibrate_confidence,
        "fit the flood confidence on held-out demo events run under --results",
    )
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

    p = add("stats", cmd_stats, "flood statistics, coverage and provenance")
    p.add_argument("--event", required=True)
    p.add_argument("--config-json", type=_json, required=True)
    for name in ("--extent", "--confidence", "--polygons", "--transitions", "--sar-summary"):
        p.add_argument(name, required=True)
    for name in ("--checkpoint", "--out", "--out-impact"):
        p.add_argument(name, required=True)
    for name in ("--landcover", "--routes", "--scenes", "--coregistration", "--water"):
        p.add_argument(name, nargs=2, required=True, metavar=("PRE", "POST"))
    p.add_argument("--validation")

    for name, func, text in (
        ("report", cmd_report, "self-contained HTML report"),
        ("mapbook", cmd_mapbook, "printable PDF map book"),
    ):
        p = add(name, func, text)
        p.add_argument("--event", required=True)
        for option in ("--stacks", "--valid", "--landcover"):
            p.add_argument(option, nargs=2, required=True, metavar=("PRE", "POST"))
        for option in ("--extent", "--confidence", "--sar-evidence", "--sar-ratio", "--stats"):
            p.add_argument(option, required=True)
        p.add_argument("--out", required=True)

    p = add("catalog", cmd_catalog, "STAC catalog of an event's products", event)
    p.add_argument("--event-dir", required=True)
    p.add_argument("--out", required=True)
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
