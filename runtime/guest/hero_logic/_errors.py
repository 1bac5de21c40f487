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


def _flow_frames(exc):
    return [f for f in traceback.extract_tb(exc.__traceback__) if f.filename == FLOW_FILENAME]


def error_of(exc):
    """`{type, message, traceback, line}` for an exception raised by flow code."""
    frames = _flow_frames(exc)
    line = frames[-1].lineno if frames else getattr(exc, "lineno", None)
    if getattr(exc, "_hero_logic_no_traceback", False):
        text = None
    else:
        text = "Traceback (most recent call last):\n"
        text += "".join(traceback.format_list(frames))
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
