"""Errors a user can act on. The CLIs print their message in one line and exit non-zero."""


class LstmpathsError(Exception):
    """Base class: the message names the file, line or setting at fault."""


class DataError(LstmpathsError):
    """Bad or missing input data."""


class ConfigError(LstmpathsError):
    """A setting that cannot work; the message lists the valid choices where there are some."""
