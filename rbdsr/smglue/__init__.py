"""The sm-aware side of RBDSR: the only package that imports sm's modules
(through `shim`). `divert` is what the hook in LVHDoISCSISR.load calls,
`transport` stands in for BaseISCSISR, `probexml` builds the wizard's XML.
`layout` tells which sm layout a machine has without importing sm."""
