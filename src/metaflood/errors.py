"""Exceptions that carry a message meant for the user, not a traceback."""


class MetafloodError(Exception):
    """Base class: the CLI prints the message and exits non-zero."""


class ConfigError(MetafloodError):
    """The configuration is invalid; the message names the key."""


class InputError(MetafloodError):
    """An input file or scene is unusable (corrupt, wrong CRS, no overlap, all nodata)."""


class AcquisitionError(MetafloodError):
    """No usable scene could be obtained from a provider."""


class ModelError(MetafloodError):
    """A checkpoint does not fit the model or the data."""


class WriteError(MetafloodError):
    """An output could not be written (a full disk, a file-size limit); names the file."""
