"""tastebud: a hybrid recommendation engine (events in, ranked lists out)."""

from importlib import metadata

try:
    __version__ = metadata.version("tastebud")
except metadata.PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"
