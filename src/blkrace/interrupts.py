"""SIGINT and SIGTERM: a stop request honoured between runs, so nothing found is lost.

A KeyboardInterrupt raised asynchronously lands anywhere, including between
the creation of a model coroutine and its first step (Python then warns
"coroutine ... was never awaited"), and SIGTERM by default ends the process
without a word.  While a campaign runs, both signals only set a flag; the
next run checks it before it builds its model (`guard`), and the campaign
stops there as it does for an interrupt.  A second signal interrupts at once.
"""

from __future__ import annotations

import signal
import warnings

_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopRequest:
    """Install with ``with StopRequest() as stop:``; ``stop.check()`` between runs."""

    def __init__(self):
        self.requested = None  # the name of the first signal received
        self._saved = {}

    def __enter__(self):
        for sig in _SIGNALS:
            try:
                self._saved[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not the main thread: leave the defaults
                pass
        return self

    def __exit__(self, *exc):
        for sig, handler in self._saved.items():
            signal.signal(sig, handler)
        self._saved.clear()
        return False

    def _handle(self, signum, frame):
        if self.requested is not None:
            raise KeyboardInterrupt
        self.requested = signal.Signals(signum).name

    def check(self):
        """Raise KeyboardInterrupt at a safe point once a stop was requested."""
        if self.requested is not None:
            raise KeyboardInterrupt

    def guard(self, build):
        """``build`` that refuses to start a run once a stop was requested."""

        def guarded(execution):
            self.check()
            build(execution)

        return guarded


def sigterm_as_interrupt():
    """Outside campaigns, SIGTERM ends the command as SIGINT does (exit 130, one line).
    Returns a function that puts the previous handler back."""

    def handle(signum, frame):
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGTERM, handle)
    except ValueError:
        return lambda: None
    return lambda: signal.signal(signal.SIGTERM, previous)


def quiet_abandoned_coroutines():
    """A run abandoned by a second signal leaves unstarted model coroutines
    behind; their "never awaited" warning says only that, so it is not shown."""
    warnings.filterwarnings("ignore", message="coroutine .* was never awaited", category=RuntimeWarning)
