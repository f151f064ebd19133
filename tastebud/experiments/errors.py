"""What the experiment store and the definition checks refuse, as three kinds the entry
points map once: an invalid definition (HTTP 422 / exit 2, naming the field), a change the
experiment's state does not allow (409 / exit 2), an unknown key (404 / exit 2)."""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import ValidationError


class ExperimentError(Exception):
    """Anything the experiment store refuses."""


class ExperimentNotFound(ExperimentError, LookupError):
    """No experiment has this key."""


class ExperimentConflict(ExperimentError):
    """The experiment's state does not allow the change (starting a stopped experiment,
    changing a running one's variants, resuming what is not paused)."""


class InvalidDefinition(ExperimentError, ValueError):
    """A definition that cannot run as written; ``problems`` are ``(field, message)`` pairs,
    the field dotted as in the YAML (``variants.1.model``)."""

    def __init__(self, problems: Sequence[tuple[str, str]]) -> None:
        self.problems = list(problems) or [("", "invalid definition")]
        field, message = self.problems[0]
        more = f" (and {len(self.problems) - 1} more)" if len(self.problems) > 1 else ""
        super().__init__(f"{field}: {message}{more}" if field else f"{message}{more}")

    @property
    def field(self) -> str:
        return self.problems[0][0]

    @classmethod
    def from_validation(cls, error: ValidationError) -> InvalidDefinition:
        """pydantic's errors, each with its location dotted."""
        return cls(
            [
                (".".join(str(part) for part in detail["loc"]), _message(detail["msg"]))
                for detail in error.errors(include_url=False)
            ]
        )


def _message(text: str) -> str:
    """pydantic's "Value error, ..." prefix is noise to a person reading the field."""
    return text.removeprefix("Value error, ")
