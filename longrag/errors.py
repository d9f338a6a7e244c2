"""User-facing errors: the CLI prints their message on one line and exits non-zero, no traceback."""


class LongragError(Exception):
    """Base class for errors caused by user input or environment, not by a bug."""


class ConfigError(LongragError):
    """A configuration key or value is wrong."""


class ModelNotFoundError(LongragError):
    """A model name is neither packaged, a local path, nor reachable."""


class IndexNotFoundError(LongragError):
    """The requested index directory does not exist or is not a longrag index."""


class IndexSettingsMismatchError(LongragError):
    """An index was built with other vector settings (encoder, segmenter or index mode) than the ones configured."""


class InputError(LongragError):
    """Input documents or paths cannot be used."""


class IndexBusyError(LongragError):
    """Another process is writing the same index."""
