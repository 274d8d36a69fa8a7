"""Rules for config values that Hydra's types cannot express, and the error naming the key."""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from omegaconf import MISSING

from sweeplab.util.errors import UserError
from sweeplab.util.redact import REDACTED, is_secret_key, redact_uri


class ConfigError(UserError, ValueError):
    """A config value outside what sweeplab accepts; the message names key, value and rule."""

    def __init__(self, key: str, value: Any, allowed: str) -> None:
        self.key, self.value, self.allowed = key, value, allowed
        shown = redact_uri(value) if isinstance(value, str) else value
        if is_secret_key(key):
            shown = REDACTED
        if isinstance(value, str) and value == MISSING:  # OmegaConf's mark for an unset value
            super().__init__(f"{key} is not set: {allowed}")
        else:
            super().__init__(f"{key}={shown!r} is not allowed: {allowed}")

    def __reduce__(self) -> tuple[Any, ...]:
        # Raised in the tracking process too (sweeplab.tracking.tracker), and sent back pickled.
        return (type(self), (self.key, self.value, self.allowed))


class ConfigErrors(ConfigError):
    """Several bad values found in one pass: one line each (its key and value: the first's)."""

    def __init__(self, errors: "list[ConfigError]") -> None:
        self.errors = list(errors)
        first = self.errors[0]
        super().__init__(first.key, first.value, first.allowed)
        self.args = ("\n".join(str(e) for e in self.errors),)

    def __str__(self) -> str:
        return str(self.args[0])

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.errors,))


def raise_all(errors: "list[ConfigError]") -> None:
    """Raise the one error, or all of them as ConfigErrors; nothing when there is none."""
    if len(errors) == 1:
        raise errors[0]
    if errors:
        raise ConfigErrors(errors)


@dataclass(frozen=True)
class Check:
    """A rule for one field: ``ok(value, node)`` says whether the value passes."""

    ok: Callable[[Any, Any], bool]
    allowed: str


def at_least(low: float, *, optional: bool = False) -> Check:
    """Values >= ``low`` (and null when ``optional``)."""
    if optional:
        return Check(lambda v, _: v is None or v >= low, f"must be >= {low} or null")
    return Check(lambda v, _: v >= low, f"must be >= {low}")


def numpy_seed(*, optional: bool = False) -> Check:
    """Seeds numpy accepts: integers from 0 to 2**32 - 1 (and null when ``optional``)."""
    high = 2**32 - 1
    if optional:
        return Check(lambda v, _: v is None or 0 <= v <= high, f"must be from 0 to {high} or null")
    return Check(lambda v, _: 0 <= v <= high, f"must be from 0 to {high}")


def between(low: float, high: float, *, closed_high: bool = False) -> Check:
    """Values in the open interval (low, high), or (low, high] when ``closed_high``."""
    if closed_high:
        return Check(lambda v, _: low < v <= high, f"must be > {low} and <= {high}")
    return Check(lambda v, _: low < v < high, f"must be > {low} and < {high}")


def not_blank() -> Check:
    """Strings with something other than whitespace in them."""
    return Check(lambda v, _: bool(str(v).strip()), "must not be empty")


def one_of(choices: Any) -> Check:
    """Values among ``choices``."""
    return Check(lambda v, _: v in choices, f"must be one of {sorted(choices)}")
