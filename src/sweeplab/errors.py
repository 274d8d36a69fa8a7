"""What sweeplab tells the user: errors they can fix, and warnings."""

import sys


class UserError(Exception):
    """A problem the user can fix from its message alone (bad config, unreachable store)."""


def warn(message: str) -> None:
    """Print ``sweeplab: warning: <message>`` on stderr."""
    print(f"sweeplab: warning: {message}", file=sys.stderr, flush=True)
