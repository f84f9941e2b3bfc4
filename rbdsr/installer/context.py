"""What one run of the installer works on and how it talks."""
import os
import sys

from rbdsr.errors import RBDError
from rbdsr.installer import sources, system

MODULES_LOAD = "etc/modules-load.d/rbdsr.conf"
PTH = "rbdsr.pth"
PTH_TEXT = "/usr/lib/rbdsr\n"
# Once per boot, after XAPI plugged its PBDs: unmap images of SRs not plugged here
# (rbdsr/cleanup.py). Pulled in by a drop-in, so enabling needs no symlink.
CLEANUP_UNIT = "etc/systemd/system/rbdsr-cleanup.service"
CLEANUP_UNIT_TEXT = """[Unit]
Description=RBDSR: unmap RBD images of SRs that are not plugged on this host
Requires=xapi.service
After=xapi.service xapi-init-complete.target
Wants=xapi-init-complete.target

[Service]
Type=oneshot
ExecStart=/usr/bin/python3 -m rbdsr.cleanup --yes
TimeoutStartSec=600
"""
CLEANUP_WANTS = "etc/systemd/system/multi-user.target.d/rbdsr-cleanup.conf"
CLEANUP_WANTS_TEXT = "[Unit]\nWants=rbdsr-cleanup.service\n"


class Refused(RBDError):
    """The installer will not (or could not) do what was asked; exit code 2."""


class Context(object):
    def __init__(self, root="/", source=None, dry_run=False, force=False, out=None, packaged=False):
        self.root = os.path.abspath(root)
        self.source = os.path.abspath(source or sources.default_source())
        self.dry_run = dry_run
        self.force = force
        self.packaged = packaged  # --packaged: the release files are the rbdsr RPM's
        self.allow_iscsi_6789 = False  # enable: take over genuine iSCSI SRs on port 6789
        self.live = system.is_live(self.root)
        self.out = out or sys.stdout

    def say(self, msg):
        self.out.write(msg + "\n")
        self.out.flush()

    def abs(self, rel):
        return os.path.join(self.root, rel)

    def show(self, rel):
        """How a path is shown to the admin: as on the host, plus the root when not '/'."""
        return "/" + rel if self.live else "/%s (under %s)" % (rel, self.root)

    @property
    def patches_dir(self):
        return os.path.join(self.source, "patches")


def decode(data):
    return None if data is None else data.decode("utf-8", "surrogateescape")


def encode(text):
    return None if text is None else text.encode("utf-8", "surrogateescape")
