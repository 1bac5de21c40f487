"""How a Python exception becomes the span record's `error` object.

Tracebacks show the flow's own frames only: the SDK's frames are noise to a
flow's author, and the flow's lines are what the UI jumps to.
"""

import sys
import traceback

#: The file name flow source is compiled under, so frames from it can be told apart.
FLOW_FILENAME = "flow.py"


def caller_line():
    """The line of the innermost frame that belongs to the flow's source, or None."""
    frame = sys._getframe(1)
    while frame is not None:
        if frame.f_code.co_filename == FLOW_FILENAME:
            return frame.f_lineno
        frame = frame.f_back
    return None


#: Python's own tracebacks show this many frames of a run of the same line,
#: then "[Previous line repeated N more times]".
_RECURSIVE_CUTOFF = 3


class _Described:
    """What describing an exception found, kept on the exception itself (so
    no longer than the exception lives). An exception unwinding through
    nested steps is described once per step, each time with a few more
    entries in front of the same chain: only those are looked at, so a
    RecursionError through a thousand steps costs a thousand entries, not a
    thousand times a thousand."""

    __slots__ = ("head", "runs", "formatted")

    def __init__(self, head, runs, formatted):
        self.head = head
        self.runs = runs
        self.formatted = formatted


def _described(exc):
    try:
        known = exc.__dict__.get("_hero_logic_described")
    except Exception:
        return None
    return known if type(known) is _Described else None


def _flow_runs(exc):
    """The flow's own traceback entries, outermost first, as runs of the same
    line: `[((line, function), entries shown, count), ...]`, and the cache of
    formatted entries."""
    head = exc.__traceback__
    known = _described(exc)
    runs = []
    tb = head
    while tb is not None:
        if known is not None and tb is known.head:
            break
        code = tb.tb_frame.f_code
        if code.co_filename == FLOW_FILENAME:
            runs = _append(runs, (tb.tb_lineno, code.co_name), (tb,), 1)
        tb = tb.tb_next
    if tb is not None:
        for key, shown, count in known.runs:
            runs = _append(runs, key, shown, count)
    formatted = known.formatted if known is not None else {}
    try:
        exc.__dict__["_hero_logic_described"] = _Described(head, runs, formatted)
    except Exception:
        pass
    return runs, formatted


def _append(runs, key, shown, count):
    """`runs` followed by a run of `count` entries of the line `key`."""
    if runs and runs[-1][0] == key:
        _, before, total = runs.pop()
        # Only the outermost few of a run are shown.
        runs.append((key, (before + shown)[:_RECURSIVE_CUTOFF], total + count))
    else:
        runs.append((key, shown, count))
    return runs


def _format_runs(runs, formatted):
    """The traceback text `traceback.format_list` gives for these entries."""
    parts = []
    for _, shown, count in runs:
        for tb in shown:
            text = formatted.get(tb)
            if text is None:
                text = formatted[tb] = traceback.format_list(traceback.extract_tb(tb, limit=1))[0]
            parts.append(text)
        if count > _RECURSIVE_CUTOFF:
            more = count - _RECURSIVE_CUTOFF
            parts.append(f"  [Previous line repeated {more} more time{'s' if more > 1 else ''}]\n")
    return "".join(parts)


def error_of(exc):
    """`{type, message, traceback, line}` for an exception raised by flow code."""
    runs, formatted = _flow_runs(exc)
    line = runs[-1][0][0] if runs else getattr(exc, "lineno", None)
    if getattr(exc, "_hero_logic_no_traceback", False):
        text = None
    else:
        text = "Traceback (most recent call last):\n"
        text += _format_runs(runs, formatted)
        text += "".join(traceback.format_exception_only(type(exc), exc))
    error = {
        "type": type(exc).__name__,
        "message": str(exc),
        "traceback": text,
        "line": line,
    }
    extra = getattr(exc, "_hero_logic_error_fields", None)
    if extra:
        error.update(extra())
    return error
