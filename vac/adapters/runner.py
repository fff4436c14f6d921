"""The only subprocess user: run an argv list (never a shell) with a timeout."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from typing import Mapping, Optional, Sequence

from vac.errors import CommandError


@dataclass(frozen=True)
class Result:
    argv: tuple
    returncode: int
    stdout: str
    stderr: str


def run(argv: Sequence[str], timeout: float = 120.0, check: bool = True,
        env: Optional[Mapping[str, str]] = None, input_text: Optional[str] = None) -> Result:
    """Run ``argv`` and return its Result; raise CommandError on failure when ``check``.

    ``timeout`` is in seconds. ``env`` entries are added to the current environment.
    """
    full_env = dict(os.environ)
    if env:
        full_env.update(env)
    try:
        proc = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout,
                              env=full_env, input=input_text, check=False)
    except FileNotFoundError as e:
        raise CommandError(argv, 127, f"command not found: {argv[0]}") from e
    except subprocess.TimeoutExpired as e:
        raise CommandError(argv, -1, f"timed out after {timeout} s") from e
    result = Result(tuple(argv), proc.returncode, proc.stdout, proc.stderr)
    if check and proc.returncode != 0:
        raise CommandError(argv, proc.returncode, proc.stderr, proc.stdout)
    return result
