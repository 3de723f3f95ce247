"""metaflood: flood mapping with a missing modality (MetaRS land cover, pre/post change).

From Python: `metaflood.run(config)` runs the workflow, `metaflood.open_event(results,
event)` opens an event's products as an xarray Dataset. Both are imported on first use,
so that `import metaflood` (every workflow job does it) stays light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["open_event", "run"]

if TYPE_CHECKING:
    from metaflood.core.datacube import open_event
    from metaflood.runner import run

_LAZY = {"open_event": "metaflood.core.datacube", "run": "metaflood.runner"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'metaflood' has no attribute {name!r}")
