"""Land cover: MetaRS inference over the event grid, windowed and routed, and the tiles
gathered into whole-event products."""
