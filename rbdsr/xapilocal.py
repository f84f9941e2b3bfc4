"""A session with the local XAPI for the pool-master and host commands
(rbdsr.fence, rbdsr.cleanup): dom0's XenAPI module, root over the local socket."""
import contextlib


@contextlib.contextmanager
def local_session(originator):
    import XenAPI  # dom0's; only the commands need it
    session = XenAPI.xapi_local()
    session.xenapi.login_with_password("root", "", "", originator)
    try:
        yield session
    finally:
        session.xenapi.session.logout()
