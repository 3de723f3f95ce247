"""Start-up check of the flood network the `change:` section names, and of the join its
calibration carries, that a schema cannot express."""

from __future__ import annotations

from pathlib import Path

from metaflood.core.errors import ConfigError, InputError
from metaflood.core.hashing import file_sha256


def check_flood_network(config: dict, base_dir: Path | str = ".") -> None:
    """Raise ConfigError naming `change.flood_network` when the file is missing or is not a
    flood network checkpoint, so a bad path fails before acquisition, not at the rule."""
    checkpoint = config.get("change", {}).get("flood_network")
    if not checkpoint:
        return
    path = Path(base_dir) / checkpoint
    if not path.is_file():
        raise ConfigError(
            f"change.flood_network: {checkpoint} does not exist (train one with "
            "`metaflood train-flood`, or set it to null)"
        )
    # Read only when a flood network is configured: the Snakefile runs this at every start.
    from metaflood.flood.confidence import NETWORK_JOIN, load_calibration
    from metaflood.model.flood_network import load_flood_network

    try:
        load_flood_network(path)
    except InputError as err:
        raise ConfigError(f"change.flood_network: {err}") from err
    calibration = config["change"].get("calibration")
    if calibration and (Path(base_dir) / calibration).is_file():
        try:
            join = load_calibration(Path(base_dir) / calibration).get(NETWORK_JOIN)
        except InputError as err:
            raise ConfigError(f"change.calibration: {err}") from err
        if join is not None and join.get("network_sha256") != file_sha256(path):
            raise ConfigError(
                f"change.calibration: {calibration}'s {NETWORK_JOIN} was fitted for another "
                f"flood network than change.flood_network ({checkpoint}): refit it for this "
                "network (`metaflood fit-flood-join`), or use a calibration without a join"
            )
