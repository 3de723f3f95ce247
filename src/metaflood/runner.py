"""Run the workflow from Python (a notebook, a script) through Snakemake's own API.

`run` does what `snakemake --cores N [--configfile FILE] [TARGETS]` does, in this
process: the same Snakefile, the same start-up checks, the same jobs. The
configuration is checked first with the same functions the Snakefile calls, so a bad
one raises ConfigError naming the key (and, for a file, the line of a YAML error)
instead of a Snakemake traceback; any other failure raises WorkflowRunError with
Snakemake's message and the logs of the jobs that failed. Snakemake refuses to run
inside a running event loop (a Jupyter kernel's), so there it runs in a thread of its
own while the caller waits.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import yaml

from metaflood.core.config import normalise_dates
from metaflood.core.errors import ConfigError, MetafloodError, WorkflowRunError
from metaflood.core.settings import schema_error
from metaflood.workflow import check_config, check_config_file

SNAKEFILE = Path(__file__).resolve().parents[2] / "Snakefile"
# The workflow's default profile, which the command line reads for every run.
PROFILE = SNAKEFILE.parent / "profiles" / "default" / "config.yaml"
# Its keys, as the settings of Snakemake's API they stand for.
PROFILE_SETTINGS = {"show-failed-logs": "show_failed_logs", "rerun-incomplete": "force_incomplete"}
# The Snakefile's own messages for a configuration it refuses.
CONFIG_PREFIX = "invalid configuration: "


def checked_config(config: str | os.PathLike | Mapping[str, Any]) -> dict[str, Any]:
    """The configuration (a YAML file or a mapping) as the Snakefile will see it, checked
    with the Snakefile's checks; ConfigError naming the key (and the file) if not."""
    if not isinstance(config, Mapping):
        return check_config_file(config)
    # Paths and dates as YAML writes them; anything else is not a configuration value.
    try:
        plain = json.loads(json.dumps(config, default=_plain))
    except TypeError as err:
        raise ConfigError(f"{CONFIG_PREFIX}{err}") from None
    plain = normalise_dates(plain)
    message = schema_error(plain)
    if message:
        raise ConfigError(f"{CONFIG_PREFIX}{message}")
    try:
        check_config(plain)
    except ConfigError as err:
        raise ConfigError(f"{CONFIG_PREFIX}{err}") from None
    return plain


def _plain(value: Any) -> str:
    import datetime as dt

    if isinstance(value, os.PathLike | dt.date):
        return str(value)
    raise TypeError(f"{value!r} ({type(value).__name__}) is not a configuration value")


def profile_settings(path: Path = PROFILE) -> dict[str, Any]:
    """The default profile's options as API settings, so that a run from Python behaves
    as `snakemake` on the command line does; an option run() cannot apply is an error
    here, not silently different behaviour."""
    options = yaml.safe_load(path.read_text()) if path.is_file() else {}
    unknown = set(options or {}) - set(PROFILE_SETTINGS)
    if unknown:
        raise MetafloodError(f"{path}: metaflood.run does not apply {sorted(unknown)}")
    return {PROFILE_SETTINGS[key]: value for key, value in (options or {}).items()}


def made_path(config: Mapping[str, Any], targets: Sequence[str], workdir: Path) -> Path:
    """What a run made: the event's results folder when the run is about one event
    (the configuration has one, or the targets lie in one), else `results/`."""
    events = set(config.get("events") or {})
    if targets:
        events &= {Path(t).parts[1] for t in targets if len(Path(t).parts) > 2}
    return workdir / "results" / events.pop() if len(events) == 1 else workdir / "results"


def failed_job_logs(workdir: Path, since: float) -> list[str]:
    """'log: what it says' for each job log of this run that ends in an error: every
    rule writes its job's output to results/<event>/logs/, and the package's commands
    end a failed job with one line, "metaflood <command>: error: <message>"."""
    found = []
    for log in sorted(workdir.glob("results/**/logs/*.log")):
        if log.stat().st_mtime < since:
            continue
        lines = log.read_text(errors="replace").strip().splitlines()
        said = [line for line in lines if re.match(r"metaflood [\w-]+: error: ", line)]
        if said or (lines and re.match(r"\w+(Error|Exception)\b", lines[-1])):
            found.append(f"{log.relative_to(workdir)}: {(said or lines)[-1]}")
    return found


def run(
    config: str | os.PathLike | Mapping[str, Any],
    targets: Sequence[str] | None = None,
    cores: int | str = "all",
    *,
    workdir: str | os.PathLike = ".",
    dryrun: bool = False,
    rerun_incomplete: bool | None = None,
    quiet: bool = False,
) -> Path:
    """Run the workflow on `config` (a YAML file or a dict in its shape) in `workdir`,
    for `targets` (paths under results/; default: every event's products), and return
    the path of what it made: results/<event> for a run about one event, else results/.

    Raises ConfigError for a configuration the workflow refuses, WorkflowRunError when
    a job or Snakemake itself fails. Options of the workflow's default profile apply as on
    the command line (a failed job's log is shown; jobs a killed run left half-done are
    rerun unless `rerun_incomplete` is False).
    """
    if not SNAKEFILE.is_file():
        raise MetafloodError(
            f"{SNAKEFILE}: not found. metaflood.run runs the workflow of a source checkout: "
            "install metaflood from a clone with `pip install -e .`"
        )
    if not isinstance(config, Mapping):
        config = Path(config).resolve()
    workdir = Path(workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    # Relative paths in the configuration (local scenes, an AOI file, a checkpoint) are
    # the workdir's, as for Snakemake: checked from there.
    with contextlib.chdir(workdir):
        checked = checked_config(config)
    targets = [str(t) for t in targets or []]
    with ExitStack() as stack:
        if isinstance(config, Mapping):
            # Snakemake reads a configuration from a file; the dict is written to one that
            # lasts as long as the run (the products' stats.json records the configuration).
            folder = stack.enter_context(tempfile.TemporaryDirectory(prefix="metaflood-run-"))
            configfile = Path(folder) / "config.yaml"
            configfile.write_text(yaml.safe_dump(checked, sort_keys=False))
        else:
            configfile = config
        _snakemake(configfile, targets, cores, workdir, dryrun, rerun_incomplete, quiet)
    return made_path(checked, targets, workdir)


def _snakemake(
    configfile: Path,
    targets: list[str],
    cores: int | str,
    workdir: Path,
    dryrun: bool,
    rerun_incomplete: bool | None,
    quiet: bool,
) -> None:
    from snakemake.api import SnakemakeApi
    from snakemake.settings.types import (
        ConfigSettings,
        DAGSettings,
        OutputSettings,
        Quietness,
        ResourceSettings,
    )
    from snakemake.utils import available_cpu_count

    cores = available_cpu_count() if cores == "all" else int(cores)
    profile = profile_settings()
    if rerun_incomplete is None:
        rerun_incomplete = bool(profile.get("force_incomplete", False))
    output = OutputSettings(
        dryrun=dryrun,
        quiet={Quietness.PROGRESS, Quietness.RULES} if quiet else None,
        show_failed_logs=bool(profile.get("show_failed_logs", False)),
    )
    started = time.time()
    running: dict[str, Any] = {}

    def execute() -> None:
        with SnakemakeApi(output) as api:
            try:
                running["workflow"] = workflow = api.workflow(
                    resource_settings=ResourceSettings(cores=cores),
                    config_settings=ConfigSettings(configfiles=[configfile]),
                    snakefile=SNAKEFILE,
                    workdir=workdir,
                )
                dag = workflow.dag(
                    DAGSettings(targets=frozenset(targets), force_incomplete=rerun_incomplete)
                )
                dag.execute_workflow(executor="dryrun" if dryrun else "local")
            except Exception as err:
                raise _error(err, _logfile(api), failed_job_logs(workdir, started)) from None

    if _event_loop_running():
        _in_thread(execute, stop=lambda: _stop_gracefully(running.get("workflow")))
    else:
        execute()


def _event_loop_running() -> bool:
    """Inside a running asyncio loop (a Jupyter kernel's), where Snakemake refuses to run."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def _in_thread(work: Callable[[], None], stop: Callable[[], None]) -> None:
    """Run `work` in a thread of its own (no event loop there) and wait for it; an
    interrupt (the notebook's stop button) asks it to `stop`, waits, and re-raises."""
    failure: list[BaseException] = []

    def target() -> None:
        try:
            work()
        except BaseException as err:
            failure.append(err)

    thread = threading.Thread(target=target, name="metaflood-run", daemon=True)
    thread.start()
    try:
        while thread.is_alive():
            thread.join(0.2)
    except KeyboardInterrupt:
        stop()
        thread.join()
        raise
    if failure:
        raise failure[0]


def _stop_gracefully(workflow_api: Any) -> None:
    """Snakemake's SIGTERM behaviour: no new job; the running ones finish."""
    store = getattr(workflow_api, "_workflow_store", None)
    scheduler = getattr(store, "scheduler", None)
    if scheduler is not None:
        scheduler.exit_gracefully()


def _logfile(api: Any) -> Path | None:
    files = list(getattr(api.logger_manager, "logfile_handlers", {}).values())
    return Path(files[0]) if files else None


def _error(err: Exception, logfile: Path | None, failed: list[str]) -> MetafloodError:
    """Snakemake's exception as ours: its message and what the failed jobs' logs say,
    without Snakemake's traceback."""
    message = _message(err)
    if CONFIG_PREFIX in message:
        return ConfigError(message[message.index(CONFIG_PREFIX) :])
    if failed:
        message = message.rstrip(".") + ": " + "; ".join(failed)
    if logfile is not None:
        message += f" (Snakemake's log: {logfile})"
    return WorkflowRunError(message)


def _message(err: BaseException) -> str:
    """The innermost message that says something: Snakemake wraps the Snakefile's own
    exceptions (a WorkflowError raised while it is read) in its own."""
    seen = []
    while err is not None and err not in seen:
        seen.append(err)
        err = err.__cause__ or err.__context__
    texts = [str(e).strip() for e in seen if str(e).strip()]
    config = [t for t in texts if CONFIG_PREFIX in t]
    return (config or texts or [type(seen[0]).__name__])[0]
