"""Start-up checks of the `model:` and `train:` sections that a schema cannot express."""

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
