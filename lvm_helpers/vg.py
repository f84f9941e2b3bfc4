"""Volume group activation on this host (bounded LVM commands)."""
from lvm_helpers import cmd
from lvm_helpers.cmd import LVMError


def exists(vg, timeout=cmd.DEFAULT_TIMEOUT):
    """True when LVM sees volume group `vg`."""
    res = cmd.run(["vgs", "--noheadings", "-o", "vg_name", vg], timeout, check=False)
    return res.rc == 0 and res.out.strip() == vg


def activate(vg, timeout=cmd.DEFAULT_TIMEOUT):
    """Activate every LV of `vg`."""
    cmd.run(["vgchange", "-ay", vg], timeout)


def deactivate(vg, timeout=cmd.DEFAULT_TIMEOUT):
    """Deactivate every LV of `vg` (fails when an LV is open)."""
    cmd.run(["vgchange", "-an", vg], timeout)


def active_lvs(vg, timeout=cmd.DEFAULT_TIMEOUT):
    """Names of the active LVs of `vg`."""
    res = cmd.run(["lvs", "--noheadings", "--separator", "|", "-o", "lv_name,lv_active", vg], timeout)
    out = []
    for line in res.out.splitlines():
        parts = [p.strip() for p in line.split("|")]
        if len(parts) == 2 and parts[1] == "active":
            out.append(parts[0])
    return out


__all__ = ["exists", "activate", "deactivate", "active_lvs", "LVMError"]
