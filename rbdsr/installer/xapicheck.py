"""Before enable: genuine iSCSI SRs that use port 6789, which RBDSR would take
over once sm is hooked (rbdsr.diversion claims every lvmoiscsi SR on that
port). Asked of XAPI on this host when it answers (XenAPI.xapi_local(),
bounded); a host without XAPI is said, not refused; an image prepared under
--root is not asked about (the host's XAPI does not describe it)."""
from rbdsr.bounded import run_bounded
from rbdsr.diversion import wants_rbd
from rbdsr.errors import TimeoutError_

# how a genuine iSCSI target name starts (RFC 3720 iqn., eui., naa.); a pool name never
# needs these prefixes, and an SR that means RBD can say so with rbd=true
IQN_PREFIXES = ("iqn.", "eui.", "naa.")
ISCSI_SR_TYPES = ("lvmoiscsi", "lvhdoiscsi")
XAPI_TIMEOUT = 20.0
# Test hook: ask XAPI under a --root too (only the running system's XAPI is asked otherwise)
UNDER_ROOT_ENV = "RBDSR_INSTALL_ASK_XAPI"


def is_genuine_iscsi(dconf):
    """True when the hook would divert this device-config although it names a real iSCSI target."""
    if not wants_rbd(dconf):
        return False
    flag = dconf.get("rbd")
    if isinstance(flag, str) and flag.strip().lower() == "true":
        return False  # the admin said it is RBD
    iqn = dconf.get("targetIQN")
    return isinstance(iqn, str) and iqn.strip().lower().startswith(IQN_PREFIXES)


def _query(xenapi_module):
    session = xenapi_module.xapi_local()
    session.xenapi.login_with_password("root", "", "", "rbdsr-installer")
    try:
        found = []
        for pbd in session.xenapi.PBD.get_all_records().values():
            if not is_genuine_iscsi(pbd.get("device_config") or {}):
                continue
            sr = session.xenapi.SR.get_record(pbd["SR"])
            entry = (sr.get("uuid", "?"), sr.get("name_label", ""), pbd["device_config"].get("targetIQN"))
            if sr.get("type") in ISCSI_SR_TYPES and entry not in found:
                found.append(entry)
        return found
    finally:
        try:
            session.xenapi.session.logout()
        except Exception:  # noqa: BLE001 - the answer is what matters
            pass


def iscsi_srs_on_6789(timeout=XAPI_TIMEOUT):
    """([(sr uuid, name, target IQN)], None) or ([], why XAPI could not be asked)."""
    try:
        import XenAPI
    except ImportError:
        return [], "no XenAPI module: could not ask XAPI for iSCSI SRs on port 6789"
    try:
        return run_bounded(lambda: _query(XenAPI), timeout, "asking XAPI for iSCSI SRs"), None
    except TimeoutError_:
        return [], "XAPI did not answer within %ds: could not look for iSCSI SRs on port 6789" % timeout
    except Exception as e:  # noqa: BLE001 - XAPI absent or refusing: say so, do not fail enable
        return [], "XAPI not reachable (%s): could not look for iSCSI SRs on port 6789" % type(e).__name__
