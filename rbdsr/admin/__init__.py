"""`rbdsr` admin command on dom0: SR snapshots, exports in Ceph's own formats,
imports, rollback, and copy-on-write clones made attachable as new SRs.

Plain modules, no sm imports: names (snapshot naming), rbdformat (Ceph's
export / export-diff streams), sidecar (checksums), xapi (SR -> device-config),
ops (librbd work), mgt / vhdparent / srclone (making a cloned SR's identity new),
cli (argument parsing, exit codes)."""
