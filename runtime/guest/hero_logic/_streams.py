"""`print()` and stderr as log lines on the current span.

Output is line-buffered in the guest so one `print` is one log line, and it is
flushed before every span boundary so each line lands on the span it was
written in.
"""

import io

from . import _host

#: A line longer than this is sent in pieces rather than held in guest memory.
_MAX_PENDING = 4096


class SpanLogStream(io.TextIOBase):
    def __init__(self, channel):
        self._channel = channel
        self._pending = []
        self._pending_len = 0

    def writable(self):
        return True

    def write(self, text):
        if not isinstance(text, str):
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        written = len(text)
        while text:
            newline = text.find("\n")
            if newline < 0:
                self._pending.append(text)
                self._pending_len += len(text)
                if self._pending_len >= _MAX_PENDING:
                    self.flush()
                break
            self._pending.append(text[:newline])
            self._emit()
            text = text[newline + 1 :]
        return written

    def _emit(self):
        line = "".join(self._pending)
        self._pending.clear()
        self._pending_len = 0
        _host.log(self._channel, line)

    def flush(self):
        if self._pending:
            self._emit()


stdout = SpanLogStream("stdout")
stderr = SpanLogStream("stderr")


def flush_all():
    # Called at every span boundary: only call out when something is pending.
    if stdout._pending:
        stdout._emit()
    if stderr._pending:
        stderr._emit()


def reset():
    """Drop anything a previous call left pending (a fresh instance has none)."""
    for stream in (stdout, stderr):
        stream._pending.clear()
        stream._pending_len = 0
