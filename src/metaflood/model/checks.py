"""Start-up checks of the `model:` and `train:` sections, and of the flood network the
`change:` section names, that a schema cannot express."""

from __future__ import annotations

from pathlib import Path

from metaflood.core.errors import ConfigError, ModelError
from metaflood.core.hashing import file_sha256
from metaflood.core.redact import refuse_url_credentials


def check_model_sections(config: dict, base_dir: Path | str = ".") -> None:
    """Raise ConfigError naming the key: missing files, or a checkpoint that cannot serve."""
    base = Path(base_dir)
    model = config.get("model", {})
    checkpoint = model.get("checkpoint")
    expected = model.get("checkpoint_sha256")
    if expected and not checkpoint:
        raise ConfigError(
            "model.checkpoint_sha256: given without model.checkpoint (it is the sha256 of "
            "that file); remove it, or name the checkpoint"
        )
    if checkpoint:
        path = base / checkpoint
        if not path.is_file():
            raise ConfigError(f"model.checkpoint: {checkpoint} does not exist")
        # torch, which checkpoints need, only when a checkpoint is configured: the
        # Snakefile runs these checks at every start.
        from metaflood.model.checkpoint import check_architecture, check_compatible, load_checkpoint

        if expected and (found := file_sha256(path)) != expected.lower():
            raise ConfigError(
                f"model.checkpoint_sha256: {checkpoint} has sha256 {found}, not the "
                f"configured {expected.lower()}: it is another file, or it changed since the "
                "hash was taken; restore it from a copy, or give its new hash if the change "
                "is yours"
            )
        try:
            ckpt = load_checkpoint(path)
            check_compatible(ckpt, checkpoint)
            check_architecture(ckpt, checkpoint)  # band counts, weight names and shapes
        except ModelError as err:
            raise ConfigError(f"model.checkpoint: {err}") from err
    authors = model.get("authors_checkpoint")
    if authors and authors.get("url"):
        refuse_url_credentials(
            authors["url"],
            "model.authors_checkpoint.url",
            instead="download the file by hand to model.authors_checkpoint.path",
        )
    offline = authors and not checkpoint and not authors.get("url")
    if offline and not (base / authors["path"]).is_file():
        raise ConfigError(
            f"model.authors_checkpoint.path: {authors['path']} does not exist and no url "
            "is given: download the authors' checkpoint by hand and save it there"
        )
    train = config.get("train", {})
    if train.get("dataset") == "earthmiss":
        root = train.get("earthmiss_root")
        if not root:
            raise ConfigError("train.earthmiss_root: required when train.dataset is earthmiss")
        if not (base / root).is_dir():
            raise ConfigError(f"train.earthmiss_root: {root} is not a directory")


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
    # torch only when a flood network is configured, as for model.checkpoint.
    from metaflood.core.errors import InputError
    from metaflood.model.flood_network import load_flood_network

    try:
        load_flood_network(path)
    except InputError as err:
        raise ConfigError(f"change.flood_network: {err}") from err
    calibration = config["change"].get("calibration")
    if calibration and (Path(base_dir) / calibration).is_file():
        from metaflood.flood.confidence import NETWORK_JOIN, load_calibration

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
