"""A real single-node SLURM cluster for the tests: munge, slurmctld and slurmd on this host.

The daemons are Debian's (`slurm-wlm`, `munge`; `.ci/run` installs them) and are started
as root. Without accounting (no slurmdbd) `sacct` is unusable, so finished jobs are
kept in `squeue` (MinJobAge) and the executor is told to query squeue.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

# slurm commands and the jobs' `srun` read the default path; SLURM_CONF does not reach
# job steps (the executor's job step removes SLURM_* variables).
CONF_PATH = Path("/etc/slurm/slurm.conf")
MARKER = "# written by metaflood's test suite"
DAEMONS = ("munged", "slurmctld", "slurmd")


class ClusterUnavailableError(Exception):
    """Why a SLURM cluster cannot be started here (the test is skipped with this reason)."""


@dataclass
class SlurmCluster:
    workdir: Path
    node: str

    def jobs(self) -> list[dict[str, str]]:
        """Every job the controller knows, finished ones included."""
        out = subprocess.run(
            ["squeue", "--states=all", "--noheader", "--format=%i|%j|%T|%C|%m|%k"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        keys = ("id", "name", "state", "cpus", "memory", "comment")
        return [dict(zip(keys, line.split("|"), strict=True)) for line in out.splitlines()]


def _missing_binaries() -> list[str]:
    needed = ("munged", "munge", "slurmctld", "slurmd", "sbatch", "squeue", "sinfo", "srun")
    return [b for b in needed if shutil.which(b) is None and not Path(f"/usr/sbin/{b}").exists()]


def _memory_mb() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) // 1024
    raise ClusterUnavailableError("cannot read the memory size from /proc/meminfo")


def slurm_conf(workdir: Path, node: str, cpus: int, memory_mb: int) -> str:
    return "\n".join(
        [
            MARKER,
            "ClusterName=metaflood-test",
            f"SlurmctldHost={node}(127.0.0.1)",
            "SlurmUser=root",
            "SlurmdUser=root",
            "AuthType=auth/munge",
            "CryptoType=crypto/munge",
            "MpiDefault=none",
            "ProctrackType=proctrack/linuxproc",
            "TaskPlugin=task/none",
            "JobAcctGatherType=jobacct_gather/none",
            "AccountingStorageType=accounting_storage/none",
            "JobCompType=jobcomp/none",
            "SchedulerType=sched/backfill",
            "SelectType=select/cons_tres",
            "SelectTypeParameters=CR_Core_Memory",
            "ReturnToService=2",
            "MinJobAge=86400",
            "SlurmctldPort=16817",
            "SlurmdPort=16818",
            f"StateSaveLocation={workdir}/state",
            f"SlurmdSpoolDir={workdir}/spool",
            f"SlurmctldPidFile={workdir}/slurmctld.pid",
            f"SlurmdPidFile={workdir}/slurmd.pid",
            f"SlurmctldLogFile={workdir}/slurmctld.log",
            f"SlurmdLogFile={workdir}/slurmd.log",
            f"NodeName={node} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory={memory_mb} State=UNKNOWN",
            f"PartitionName=debug Nodes={node} Default=YES MaxTime=INFINITE State=UP",
            "",
        ]
    )


def _start_munge() -> None:
    if subprocess.run(["munge", "-n"], capture_output=True).returncode == 0:
        return  # a munged already answers
    run_dir = Path("/run/munge")
    run_dir.mkdir(parents=True, exist_ok=True)
    shutil.chown(run_dir, "munge", "munge")
    if not Path("/etc/munge/munge.key").exists():
        subprocess.run(["/usr/sbin/mungekey", "--create"], check=True)
        shutil.chown("/etc/munge/munge.key", "munge", "munge")
    subprocess.run(["runuser", "-u", "munge", "--", "/usr/sbin/munged"], check=True)
    _wait(lambda: subprocess.run(["munge", "-n"], capture_output=True).returncode == 0, "munged")


def _wait(ready, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ready():
            return
        time.sleep(0.5)
    raise ClusterUnavailableError(f"{what} did not come up within {timeout:.0f} s")


def _node_idle(node: str) -> bool:
    result = subprocess.run(
        ["sinfo", "--noheader", "--nodes", node, "--format=%t"], capture_output=True, text=True
    )
    return result.returncode == 0 and result.stdout.strip() in {"idle", "mix", "alloc"}


def start_cluster(workdir: Path) -> SlurmCluster:
    """Start munge, slurmctld and slurmd; ClusterUnavailableError says why not, if so."""
    missing = _missing_binaries()
    if missing:
        raise ClusterUnavailableError(
            f"SLURM binaries not installed ({', '.join(missing)}); "
            "`make test` as root installs them (.ci/system-packages.sh)"
        )
    if os.geteuid() != 0:
        raise ClusterUnavailableError("starting slurmctld and slurmd needs root")
    if CONF_PATH.exists() and MARKER not in CONF_PATH.read_text():
        raise ClusterUnavailableError(f"{CONF_PATH} belongs to a real cluster; not replacing it")
    stop_cluster()
    node = socket.gethostname().split(".")[0]
    for sub in ("state", "spool"):
        (workdir / sub).mkdir(parents=True, exist_ok=True)
    CONF_PATH.parent.mkdir(parents=True, exist_ok=True)
    CONF_PATH.write_text(slurm_conf(workdir, node, os.cpu_count() or 1, int(_memory_mb() * 0.8)))
    _start_munge()
    subprocess.run(["/usr/sbin/slurmctld"], check=True)
    subprocess.run(["/usr/sbin/slurmd"], check=True)
    _wait(lambda: _node_idle(node), f"node {node}")
    return SlurmCluster(workdir, node)


def stop_cluster() -> None:
    """Stop the daemons and remove the configuration this module wrote (munged stays)."""
    for daemon in ("slurmd", "slurmctld"):
        subprocess.run(["pkill", "-x", daemon], capture_output=True)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        alive = [
            d
            for d in ("slurmd", "slurmctld")
            if subprocess.run(["pgrep", "-x", d], capture_output=True).returncode == 0
        ]
        if not alive:
            break
        time.sleep(0.3)
    if CONF_PATH.exists() and MARKER in CONF_PATH.read_text():
        CONF_PATH.unlink()
