#!/usr/bin/env python3
"""Remove RBDSR from dom0: disable, then remove every file it installed and its
state (/var/lib/rbdsr). The logic lives in rbdsr/installer/; see --help."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from rbdsr.installer.cli import uninstall_main  # noqa: E402

if __name__ == "__main__":
    sys.exit(uninstall_main())
