"""Progress of a long stage, drawn only where someone watches it: a tqdm bar when the stream is a
terminal; otherwise (a log file, a pipe, CI) one plain line when the stage finishes and nothing before,
so a log never fills with carriage returns and redrawn bars."""
import sys
import time


def is_terminal(stream):
    isatty = getattr(stream, "isatty", None)
    return bool(isatty is not None and isatty())


class Progress:
    """`with Progress(total, label) as p: ... p.update()`.  stream=None means sys.stderr; pass a file (or
    os.devnull) to send it elsewhere.  A stage that ends in an exception reports nothing more: the error
    is what matters then."""

    def __init__(self, total, label, stream=None, unit="run"):
        self.stream = sys.stderr if stream is None else stream
        self.total, self.label, self.unit, self.count = total, label, unit, 0
        self._bar = None
        self._t0 = time.perf_counter()
        if is_terminal(self.stream):
            from tqdm import tqdm
            self._bar = tqdm(total=total, desc=label, unit=unit, file=self.stream, leave=True,
                             dynamic_ncols=True)

    def update(self, n=1):
        self.count += n
        if self._bar is not None:
            self._bar.update(n)

    def close(self, finished=True):
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        elif finished:
            seconds = time.perf_counter() - self._t0
            self.stream.write(f"{self.label}: {self.count}/{self.total} {self.unit}s done in {seconds:.1f} s\n")
            self.stream.flush()

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        self.close(finished=exc_type is None)
        return False
