"""The tutorials' exercise runner, in the style of Spinning Up's exercises.

Each notebook's exercise has a stub the learner fills in (it raises ``NotImplementedError`` until
then), a ``check_*`` function that compares an attempt with the library, and a shipped solution
that the same check runs. :func:`try_exercise` runs a check on the learner's attempt so that an
unfilled stub reads as a reminder, not as a failing notebook.
"""

from __future__ import annotations

from typing import Callable

__all__ = ["try_exercise"]


def try_exercise(check: Callable[[Callable], None], attempt: Callable) -> bool:
    """Run ``check(attempt)``; returns True when the check passed, False while ``attempt`` is a stub.

    A wrong attempt raises the check's ``AssertionError`` (with its message); an attempt that still
    raises ``NotImplementedError`` prints a reminder instead.
    """
    if not callable(check) or not callable(attempt):
        raise TypeError(f"try_exercise(check, attempt) takes two functions, got {check!r} and {attempt!r}")
    try:
        check(attempt)
    except NotImplementedError:
        name = getattr(attempt, "__name__", "your function")
        print(f"{name} is not written yet: fill it in above, then run this cell again")
        return False
    return True
