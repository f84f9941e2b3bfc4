#!/usr/bin/env python3
"""Install, check or remove RBDSR on dom0: install_rbdsr.py enable|disable|check|status.
The logic lives in rbdsr/installer/; run with --help for options and exit codes."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from rbdsr.installer.cli import install_main  # noqa: E402

if __name__ == "__main__":
    sys.exit(install_main())
