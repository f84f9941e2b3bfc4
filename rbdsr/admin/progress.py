"""Progress of long work on stderr: a rewritten line on a terminal, a line
per 10% otherwise (logs, pipes)."""
import sys
import time


class Progress(object):
    def __init__(self, what, total, out=None, quiet=False):
        self.what = what
        self.total = max(1, total)
        self.out = out or sys.stderr
        self.quiet = quiet
        self.tty = hasattr(self.out, "isatty") and self.out.isatty()
        self.last_step = -1
        self.last_time = 0.0
        self.start = time.time()

    def update(self, done):
        if self.quiet:
            return
        pct = min(100, int(done * 100 // self.total))
        now = time.time()
        if self.tty:
            if now - self.last_time < 0.2 and pct < 100:
                return
            self.last_time = now
            self.out.write("\r%s: %3d%% (%d/%d MiB)" % (self.what, pct, done >> 20, self.total >> 20))
        else:
            step = pct // 10
            if step == self.last_step:
                return
            self.last_step = step
            self.out.write("%s: %d%%\n" % (self.what, pct))
        self.out.flush()

    def done(self, note=""):
        if self.quiet:
            return
        self.update(self.total)
        took = time.time() - self.start
        self.out.write("%s%s: done in %.1fs%s\n" % ("\n" if self.tty else "", self.what, took,
                                                     "; " + note if note else ""))
        self.out.flush()
