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


class ResultsError(MetafloodError):
    """A results folder cannot be opened as an event's; the message says what to run."""


class NotAnEventError(ResultsError):
    """The folder is not an event's results (no such event, or another kind of folder)."""


class RunIncompleteError(ResultsError):
    """The event's run did not finish: its last product is missing."""


class WorkflowRunError(MetafloodError):
    """A workflow run from Python failed; the message names the failed jobs' logs."""
