"""Cluster-wide claims on an image: RBD advisory locks (librbd's cls_lock).

A vbd in mode `w` takes an *exclusive* lock, a vbd in mode `r` a *shared* one
with the tag "block-rbd": Ceph itself then refuses a writer while anyone holds
the image, and a reader while a writer holds it, on every host at once.

The lock cookie names the claimant, so any process can find and release it
later (a lock belongs to the librados client instance that took it, which is
gone when the hotplug script exits; releasing is therefore break_lock of the
locker carrying our cookie):

    block-rbd host=<host id> vbd=<xenstore backend path>

Advisory locks do not fence I/O: breaking the claim of a host that is alive
lets two writers in. `break_claims` only breaks what it is told to.
"""
import collections
import re

from rbdsr.errors import InUseError, RBDError
from rbdsr.hotplug.target import target_spec

TAG = "block-rbd"
COOKIE_PREFIX = "block-rbd "
_COOKIE_RE = re.compile(r"\Ablock-rbd host=(\S+) vbd=(\S+)\Z")
_HOST_RE = re.compile(r"\A[A-Za-z0-9][A-Za-z0-9_.-]{0,62}\Z")

Claim = collections.namedtuple("Claim", "client cookie address exclusive tag host vbd")


def check_host_id(host_id):
    if not isinstance(host_id, str) or not _HOST_RE.match(host_id):
        raise RBDError("host id %r is not 1-63 letters, digits, _ . -" % (host_id,))
    return host_id


def make_cookie(host_id, vbd):
    check_host_id(host_id)
    if not vbd or any(c.isspace() for c in vbd):
        raise RBDError("vbd path %r is not a xenstore path" % (vbd,))
    return "%shost=%s vbd=%s" % (COOKIE_PREFIX, host_id, vbd)


def parse_cookie(cookie):
    """(host, vbd) of a block-rbd cookie, or None for someone else's lock."""
    m = _COOKIE_RE.match(cookie or "")
    return (m.group(1), m.group(2)) if m else None


def list_claims(image):
    """Every lock on the image as Claim tuples (host/vbd None for non-block-rbd locks)."""
    info = image.list_lockers()
    if not info:
        return []
    out = []
    for client, cookie, address in info.get("lockers", []):
        parsed = parse_cookie(cookie)
        out.append(Claim(client, cookie, address, bool(info.get("exclusive")), info.get("tag", ""),
                         parsed[0] if parsed else None, parsed[1] if parsed else None))
    return out


def describe(claim):
    kind = "writing" if claim.exclusive else "reading"
    if claim.host:
        return "host %s (vbd %s) for %s, client %s at %s" % (claim.host, claim.vbd, kind, claim.client,
                                                              claim.address)
    return "a non-block-rbd lock (cookie %r, tag %r) by %s at %s" % (claim.cookie, claim.tag, claim.client,
                                                                    claim.address)


def acquire(image, rbd_mod, ref, write, cookie):
    """Claim the image `ref` (an ImageId) for writing (exclusive) or reading
    (shared). Idempotent for the same cookie; InUseError naming the holders when
    someone else has it, with the break-claim command in block-rbd's target syntax."""
    for c in list_claims(image):
        if c.cookie == cookie and c.exclusive == write:
            return False  # ours already (an earlier add of the same vbd)
    try:
        if write:
            image.lock_exclusive(cookie)
        else:
            image.lock_shared(cookie, TAG)
        return True
    except (rbd_mod.ImageBusy, rbd_mod.ImageExists):
        pass
    holders = [c for c in list_claims(image) if c.cookie != cookie] or list_claims(image)
    raise InUseError(
        "%s is claimed by %s; refusing to attach it %s. If that host is dead, run on any host: "
        "block-rbd break-claim %s --host <host> (mode w!/r! or claim=no skips the check)"
        % (ref.spec(), "; ".join(describe(c) for c in holders) or "another client",
           "for writing" if write else "read-only", target_spec(ref)))


def release(image, rbd_mod, cookie, own_client=None):
    """Release every lock carrying our cookie; returns how many were released.
    own_client: our connection's "client.N" -- its own lock is unlocked, not broken."""
    n = 0
    for c in list_claims(image):
        if c.cookie != cookie:
            continue
        try:
            if c.client == own_client:
                image.unlock(c.cookie)
            else:
                image.break_lock(c.client, c.cookie)
            n += 1
        except rbd_mod.ImageNotFound:
            continue  # released concurrently
    return n


def break_claims(image, rbd_mod, select):
    """Break the block-rbd claims for which select(claim) is true; returns them."""
    broken = []
    for c in list_claims(image):
        if c.host is None or not select(c):
            continue
        try:
            image.break_lock(c.client, c.cookie)
        except rbd_mod.ImageNotFound:
            continue
        broken.append(c)
    return broken
