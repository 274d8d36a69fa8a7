"""Keeping credentials out of what sweeplab prints and logs."""

import re
from typing import Any

# Everything between "scheme://" and the last "@" of the authority: a password may hold "@".
_USERINFO = re.compile(r"(?<=://)[^/\s]*@")


def redact_uri(text: str) -> str:
    """``text`` with the ``user:password@`` part of any URI in it replaced by ``***@``."""
    return _USERINFO.sub("***@", text)


def strip_userinfo(uri: str) -> str:
    """``uri`` without its ``user:password@`` part, for clients that cannot parse it."""
    return _USERINFO.sub("", uri)


# Config keys whose values are secrets wherever they appear (experiment tags, user fields).
_SECRET_KEY = re.compile(r"pass(word|wd)?|token|secret|api[_-]?key|credential", re.IGNORECASE)
REDACTED = "***"


def is_secret_key(key: str) -> bool:
    """Whether a config key (its last dotted part) names a secret."""
    return bool(_SECRET_KEY.search(key.rsplit(".", 1)[-1]))


def redact_secrets(value: Any, key: str = "") -> Any:
    """A copy of a plain config container with secret-keyed values and URI passwords masked."""
    if key and is_secret_key(key):
        return REDACTED
    if isinstance(value, dict):
        return {k: redact_secrets(v, str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [redact_secrets(v) for v in value]
    if isinstance(value, str):
        return redact_uri(value)
    return value


def redact_override(override: str) -> str:
    """A command-line override as it may be shown: ``a.token=x`` -> ``a.token=***``."""
    key, sep, _ = override.partition("=")
    if sep and is_secret_key(key.lstrip("+~")):
        return f"{key}={REDACTED}"
    return redact_uri(override)
