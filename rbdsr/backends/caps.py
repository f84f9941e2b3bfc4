"""The cephx caps RBDSR asks for, and the check that a user fetched over SSH
has no more than that.

RBDSR needs `mon 'profile rbd'` and `osd 'profile rbd pool=<pool>'` (with
`namespace=<ns>` when the SR lives in one); `mgr 'profile rbd[ pool=...]'` is
tolerated (Ceph's own docs grant it). Any other cap -- `allow *`, `allow rwx`,
mds, another daemon type, a profile other than rbd -- makes the user
admin-like for our purpose: its key is refused, never fetched into dom0.
"""
import re

from rbdsr.errors import AuthError

MON_CAP = "profile rbd"
_GRANT_RE = re.compile(r"\Aprofile rbd(?: pool=([A-Za-z0-9_.+=-]+)(?: namespace=([A-Za-z0-9_.+=-]+))?)?\Z")


def osd_cap(pool, namespace=""):
    cap = "profile rbd pool=%s" % pool
    return cap + (" namespace=%s" % namespace if namespace else "")


def _grants(text):
    return [" ".join(g.split()) for g in text.split(",") if g.strip()]


def check_least_privilege(entity, granted, pool, namespace=""):
    """AuthError unless `granted` ({daemon: cap text}) is RBD-only and covers pool[/namespace]."""
    want = "mon '%s' osd '%s'" % (MON_CAP, osd_cap(pool, namespace))

    def refuse(why):
        shown = ", ".join("%s '%s'" % kv for kv in sorted(granted.items())) if isinstance(granted, dict) else "?"
        return AuthError("refusing the key of %s: %s (its caps: %s); RBDSR needs only %s"
                         % (entity, why, shown or "none", want))

    if not isinstance(granted, dict) or not all(isinstance(v, str) for v in granted.values()):
        raise refuse("Ceph returned no readable caps")
    extra = sorted(set(granted) - set(["mon", "osd", "mgr"]))
    if extra:
        raise refuse("it has caps on %s" % ", ".join(extra))
    if _grants(granted.get("mon", "")) != [MON_CAP]:
        raise refuse("its mon cap is not exactly '%s'" % MON_CAP)
    covered = False
    for daemon in ("osd", "mgr"):
        for grant in _grants(granted.get(daemon, "")):
            m = _GRANT_RE.match(grant)
            if not m or (daemon == "osd" and not m.group(1)):
                raise refuse("its %s cap '%s' is broader than 'profile rbd pool=...'" % (daemon, grant))
            if daemon == "osd" and m.group(1) == pool and (m.group(2) is None or m.group(2) == (namespace or None)):
                covered = True
    if not covered:
        raise refuse("no osd cap covers pool %s" % (pool + ("/" + namespace if namespace else "")))
