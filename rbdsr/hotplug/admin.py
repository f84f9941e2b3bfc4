"""block-rbd's admin commands: `claims TARGET` and `break-claim TARGET`."""
from rbdsr.errors import ConfigError
from rbdsr.hotplug import claims
from rbdsr.hotplug.context import Context, _close, _open_image, host_id
from rbdsr.hotplug.xenstore import Xenstore

BREAK_USAGE = "block-rbd break-claim TARGET [--host HOST] [--dry-run]"


def do_claims(target, out):
    ctx = Context(target)
    with ctx.connect() as c:
        ioctx, image = _open_image(c, target.ref)
        try:
            found = claims.list_claims(image)
        finally:
            _close(ioctx, image)
    if not found:
        out.write("%s: no claims\n" % target.ref.spec())
    for cl in found:
        out.write("%s: %s\n" % (target.ref.spec(), claims.describe(cl)))
    return 0


def do_break_claim(target, args, environ, out, log, xs=None):
    host, dry_run = None, False
    rest = list(args)
    while rest:
        a = rest.pop(0)
        if a == "--host" and rest:
            host = claims.check_host_id(rest.pop(0))
        elif a == "--dry-run":
            dry_run = True
        else:
            raise ConfigError("break-claim: unexpected argument %r (usage: %s)" % (a, BREAK_USAGE))
    me = host_id(environ)
    xs = xs or Xenstore()
    if host is None or host == me:
        # Our own claims: stale only when the vbd they name is gone from xenstore.
        def select(cl):
            return cl.host == me and not xs.exists(cl.vbd)
        what = "stale claims of this host (%s)" % me
    else:
        def select(cl):
            return cl.host == host
        what = "claims of host %s" % host
    ctx = Context(target)
    with ctx.connect() as c:
        ioctx, image = _open_image(c, target.ref)
        try:
            if dry_run:
                chosen = [cl for cl in claims.list_claims(image) if cl.host and select(cl)]
            else:
                chosen = claims.break_claims(image, c.rbd, select)
        finally:
            _close(ioctx, image)
    verb = "would break" if dry_run else "broke"
    if not chosen:
        out.write("%s: no %s\n" % (target.ref.spec(), what))
    for cl in chosen:
        out.write("%s: %s %s\n" % (target.ref.spec(), verb, claims.describe(cl)))
        if not dry_run:
            log.warn("broke the claim on %s of %s" % (target.ref.spec(), claims.describe(cl)))
    if chosen and host not in (None, me):
        out.write("make sure host %s is really down: an advisory claim does not stop its writes "
                  "(to fence it: ceph osd blocklist add <address>)\n" % host)
    return 0
