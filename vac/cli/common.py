"""Exit statuses of the ``vac`` command (documented in vac(1)) and the usage-error helper."""

from __future__ import annotations

import sys

EXIT_OK = 0
EXIT_FAILURE = 1     # a configuration error, a failed operation, a factory that did not answer
EXIT_USAGE = 2       # a usage error: unknown command or option, missing or malformed argument


def usage_error(message: str) -> int:
    """Print ``message`` on stderr; the exit status of a usage error."""
    print(message, file=sys.stderr)
    return EXIT_USAGE
