"""Stand-in of the storage manager (sm) for tests: `flat/` is the XCP-ng 8.3
layout (/opt/xensource/sm), `mkpkg.build()` derives the xapi-project/sm
package layout (`sm`, `sm.core`, `sm.drivers`) from it; `xapi/` holds the
XenAPI stub with its JSON-backed in-memory XAPI."""
