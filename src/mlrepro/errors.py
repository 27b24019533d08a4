"""Errors that reach the user as one clear line (the CLI prints them without a traceback)."""


class MlreproError(Exception):
    """Base class: the message names the file/option and what was expected."""


class DataError(MlreproError, ValueError):
    """A dataset file is missing, truncated, corrupt or of the wrong format."""


class ConfigError(MlreproError, ValueError):
    """An unknown experiment, key or option, or a value of the wrong type."""


class InputError(MlreproError, ValueError):
    """Bad arrays given to an estimator: NaN/inf, wrong shape, impossible setting."""


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C during a run: says which folder to continue (or that nothing was kept)."""

    def __init__(self, how_to_continue: str):
        super().__init__(how_to_continue)
        self.how_to_continue = how_to_continue
