"""Start-up checks of the `model:` and `train:` sections that a schema cannot express."""

from __future__ import annotations

from pathlib import Path

from metaflood.errors import ConfigError, ModelError


def check_model_sections(config: dict, base_dir: Path | str = ".") -> None:
    """Raise ConfigError naming the key: missing files, or a checkpoint that cannot serve."""
    base = Path(base_dir)
    model = config.get("model", {})
    checkpoint = model.get("checkpoint")
    if checkpoint:
        path = base / checkpoint
        if not path.is_file():
            raise ConfigError(f"model.checkpoint: {checkpoint} does not exist")
        from metaflood.checkpoint import check_architecture, check_compatible, load_checkpoint

        try:
            ckpt = load_checkpoint(path)
            check_compatible(ckpt, checkpoint)
            check_architecture(ckpt, checkpoint)  # band counts, weight names and shapes
        except ModelError as err:
            raise ConfigError(f"model.checkpoint: {err}") from err
    authors = model.get("authors_checkpoint")
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
