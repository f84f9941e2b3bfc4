"""The one rule that makes an lvmoiscsi SR an RBD SR.

XAPI's iSCSI wizards always send a port, so the port is the switch: exactly
6789 (the Ceph monitor port; spaces around it are ignored). `rbd=true` diverts
whatever port the wizard sent. Nothing else does: 16789, 67890, 3260 stay iSCSI.
The port never says where the monitors listen; `target` does (default 6789).

The hook in sm's driver (patches/lvhdoiscsisr-hook.py.in), the driver and the
config parser all ask `wants_rbd`; nothing else restates the rule. This module
imports nothing, so sm can ask it for every iSCSI SR at no cost.
"""

DIVERSION_PORT = 6789
RULE = "port %d (or rbd=true with any port)" % DIVERSION_PORT


def wants_rbd(dconf):
    """True when this device-config belongs to RBDSR."""
    if not isinstance(dconf, dict):
        return False
    port = dconf.get("port")
    flag = dconf.get("rbd")
    if isinstance(port, str) and port.strip() == str(DIVERSION_PORT):
        return True
    return isinstance(flag, str) and flag.strip().lower() == "true"
