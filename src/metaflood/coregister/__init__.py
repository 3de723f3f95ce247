"""Co-registration: stack, align, warp and mask the acquired scenes onto the event grid."""
