"""Keeping credentials out of what sweeplab prints and logs."""

import re

# Everything between "scheme://" and the last "@" of the authority: a password may hold "@".
_USERINFO = re.compile(r"(?<=://)[^/\s]*@")


def redact_uri(text: str) -> str:
    """``text`` with the ``user:password@`` part of any URI in it replaced by ``***@``."""
    return _USERINFO.sub("***@", text)


def strip_userinfo(uri: str) -> str:
    """``uri`` without its ``user:password@`` part, for clients that cannot parse it."""
    return _USERINFO.sub("", uri)
