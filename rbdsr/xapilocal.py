"""A session with the local XAPI for the pool-master and host commands
(rbdsr.fence, rbdsr.cleanup): dom0's XenAPI module, root over the local socket."""
import contextlib
import sys

from rbdsr.errors import RBDError


@contextlib.contextmanager
def local_session(originator):
    import XenAPI  # dom0's; only the commands need it
    session = XenAPI.xapi_local()
    session.xenapi.login_with_password("root", "", "", originator)
    try:
        yield session
    finally:
        session.xenapi.session.logout()


def run_command(prog, work):
    """A host command's main: work(session) with a local XAPI session, its summary
    line printed; an RBDError is one line on stderr and exit status 1."""
    try:
        with local_session(prog.replace(".", "-")) as session:  # rbdsr.fence -> originator rbdsr-fence
            summary = work(session)
    except RBDError as e:
        sys.stderr.write("%s: %s\n" % (prog, e))
        return 1
    print(summary)
    return 0
