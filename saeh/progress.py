"""A one-line progress counter for long steps that do not go through Keras (decoding a dataset's images), drawn on
a terminal only: redirected to a file, a log gets no carriage returns (the training script's one-line-per-epoch
promise). Nothing here imports TensorFlow.
"""

import sys
import time

_REDRAW_SECONDS = 0.2  # a terminal redrawn more often only flickers


class ProgressLine:
    """`update(done)` redraws "`label`: done/total (pct%)" in place; `close()` ends the line. Draws nothing unless
    `enabled`: True, or "auto" (the default) when `stream` (default: standard output, where Keras draws its bars) is
    a terminal."""

    def __init__(self, total, label, enabled="auto", stream=None):
        self.total, self.label = int(total), label
        self.stream = sys.stdout if stream is None else stream
        self.enabled = _is_terminal(self.stream) if enabled == "auto" else bool(enabled)
        self._drawn_at = None

    def update(self, done):
        if not self.enabled:
            return
        now = time.monotonic()
        if done < self.total and self._drawn_at is not None and now - self._drawn_at < _REDRAW_SECONDS:
            return
        self._drawn_at = now
        percent = 100 * done // max(self.total, 1)
        self.stream.write(f"\r{self.label}: {done}/{self.total} ({percent}%)")
        self.stream.flush()

    def close(self):
        if self.enabled and self._drawn_at is not None:
            self.stream.write("\n")
            self.stream.flush()


def _is_terminal(stream):
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())
