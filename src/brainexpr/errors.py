"""Exceptions that the command line turns into one clear line and exit code 2.

Library code raises these for *expected* problems (bad input, missing data, unknown
genes). Anything else is a bug and keeps its traceback.
"""


class BrainexprError(Exception):
    """Base class of all expected, user-facing errors."""


class DataNotFoundError(BrainexprError, FileNotFoundError):
    """A reference data file is missing from every place it was looked for."""


class ChecksumError(BrainexprError):
    """A data file exists but its SHA-256 differs from the registry."""


class InputError(BrainexprError, ValueError):
    """An input table, image or argument is malformed (NaNs, wrong shape, wrong space...)."""


class UnknownGeneError(InputError, KeyError):
    """Requested genes are not present in a dataset."""

    def __str__(self):  # KeyError would add quotes around the message
        return str(self.args[0]) if self.args else ""


class OutputError(BrainexprError):
    """An output path cannot be written without touching what the user had (see
    :mod:`brainexpr.outputs`)."""


class OutputLockedError(OutputError):
    """Another brainexpr process is writing the same output folder."""
