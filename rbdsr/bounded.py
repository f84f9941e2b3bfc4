"""Bounding calls that have no timeout of their own (getaddrinfo, sysfs writes
that block in the kernel): run them in a daemon thread and stop waiting."""
import threading

from rbdsr.errors import TimeoutError_


def run_bounded(fn, timeout, what):
    """Return fn() or raise TimeoutError_ after `timeout` seconds; fn's own
    exceptions propagate. A timed-out call keeps running in its daemon thread."""
    box = {}

    def target():
        try:
            box["result"] = fn()
        except BaseException as e:  # noqa: B036 - re-raised in the caller's thread
            box["error"] = e

    t = threading.Thread(target=target, name="rbdsr-" + what.split()[0])
    t.daemon = True
    t.start()
    t.join(max(0.0, timeout))
    if t.is_alive():
        raise TimeoutError_("%s did not finish within %.0f s" % (what, timeout))
    if "error" in box:
        raise box["error"]
    return box.get("result")
