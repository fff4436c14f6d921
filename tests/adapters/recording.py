"""A runner double: answers commands by their first word and records every call."""

from __future__ import annotations

from typing import Dict, List, Optional

from vac.adapters.runner import Result


class RecordingRunner:
    """Answers argv by its first word; records every call with its env."""

    def __init__(self, answers: Optional[Dict[str, object]] = None):
        self.answers = dict(answers or {})
        self.calls: List[list] = []
        self.envs: List[dict] = []
        self.inputs: List[Optional[str]] = []

    def __call__(self, argv, timeout=120.0, check=True, env=None, input_text=None):
        self.calls.append(list(argv))
        self.envs.append(dict(env or {}))
        self.inputs.append(input_text)
        answer = self.answers.get(argv[0], "")
        if callable(answer) and not isinstance(answer, Exception):
            answer = answer(list(argv))
        if isinstance(answer, Exception):
            if check:
                raise answer
            return Result(tuple(argv), 5, "", str(answer))
        return Result(tuple(argv), 0, answer, "  WARNING: activation disabled\n")

    def commands(self) -> List[str]:
        return [c[0] for c in self.calls]
