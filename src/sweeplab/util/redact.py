"""Keeping credentials out of what sweeplab prints and logs."""

import io
import logging
import re
from pathlib import Path
from typing import Any, TextIO

# Everything between "scheme://" and the last "@" of the authority: a password may hold "@".
_USERINFO = re.compile(r"(?<=://)[^/\s]*@")


def redact_uri(text: str) -> str:
    """``text`` with the ``user:password@`` part of any URI in it replaced by ``***@``."""
    return _USERINFO.sub("***@", text)


def strip_userinfo(uri: str) -> str:
    """``uri`` without its ``user:password@`` part, for clients that cannot parse it."""
    return _USERINFO.sub("", uri)


# Config keys whose values are secrets wherever they appear (experiment tags, user fields):
# the key's last part is, or ends in, one of these words ("api_token", "db_password"; not
# "tokenizer").
_SECRET_WORD = (
    r"(?:pass(?:word|wd)?|token|secret|credentials?|(?:api|secret|access|private)[_-]?key)"
)
_SECRET_KEY = re.compile(rf"(?:^|[_\-]){_SECRET_WORD}$", re.IGNORECASE)
# key=value or key: value inside a line of text (YAML, overrides, Hydra's override_dirname);
# the value is quoted, or runs to a comma, space or bracket.
_SECRET_PAIR = re.compile(
    rf"(?P<key>[\w.+~\-]*(?<![A-Za-z0-9]){_SECRET_WORD})(?P<sep>[ \t]*[=:][ \t]*)"
    r"""(?P<value>"[^"]*"|'[^']*'|[^,\s'"}\]]+)""",
    re.IGNORECASE,
)
REDACTED = "***"


def is_secret_key(key: str) -> bool:
    """Whether a config key (its last dotted part) names a secret."""
    return bool(_SECRET_KEY.search(key.lstrip("+~").rsplit(".", 1)[-1]))


def scrub_text(text: str) -> str:
    """``text`` with URI passwords and the values of secret-named keys masked."""
    return _SECRET_PAIR.sub(lambda m: m["key"] + m["sep"] + REDACTED, redact_uri(text))


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


def scrub_files(folder: Path) -> None:
    """Mask secrets in the YAML files Hydra wrote into ``folder`` (its .hydra/ snapshots)."""
    for path in folder.glob("*.yaml"):
        text = path.read_text()
        if (clean := scrub_text(text)) != text:
            path.write_text(clean)


class ScrubbedStream(io.TextIOBase):
    """A text stream that masks secrets in what is written to it (for Hydra's --cfg output)."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        """Write ``text`` with secrets masked."""
        return self._stream.write(scrub_text(text))

    def flush(self) -> None:
        """Flush the stream underneath."""
        self._stream.flush()


def scrub_hydra_logs() -> None:
    """Mask secrets in every log record Hydra emits (it prints each job's overrides)."""
    make_record = logging.getLogRecordFactory()

    def scrubbed(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = make_record(*args, **kwargs)
        if record.name.startswith(("hydra", "hydra_plugins")):
            record.msg, record.args = scrub_text(record.getMessage()), ()
        return record

    # A record factory survives the logging reconfiguration Hydra does for every job.
    logging.setLogRecordFactory(scrubbed)
