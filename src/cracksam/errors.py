"""Exceptions that carry a message meant for the user.

The CLI prints these as ``error: <message>`` and exits non-zero; anything else is a bug and
keeps its traceback.
"""

from __future__ import annotations


class CrackSAMError(Exception):
    """Base class: an error caused by user input (a file, an argument, a config)."""


class ConfigError(CrackSAMError):
    """A configuration file or value is invalid."""


class InvalidValueError(ConfigError, ValueError):
    """A value the user chose (an option, a config field) is out of range or not one of the
    choices.  Also a ``ValueError``, which these checks raised before, so callers of the library
    that catch ``ValueError`` keep working; the CLI prints it as one ``error:`` line."""


class CheckpointError(CrackSAMError):
    """A checkpoint file is missing, unreadable, truncated or does not fit the model."""


class DatasetError(CrackSAMError):
    """A dataset folder is malformed; the message lists the offending files."""


class CrackSAMWarning(UserWarning):
    """Something the user should know that does not stop the command (a runtime falling back to
    the CPU); the CLI prints these as one ``warning: <message>`` line, without the source line."""
