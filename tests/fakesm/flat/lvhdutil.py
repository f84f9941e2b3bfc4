"""Stand-in of sm's lvhdutil: VG/LV naming of LVHD SRs."""
VG_LOCATION = "/dev"
VG_PREFIX = "VG_XenStorage-"
LV_PREFIX = {"vhd": "VHD-", "aio": "LV-"}
