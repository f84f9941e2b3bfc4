"""Errors raised by the core, each carrying the sm XenError key the driver maps
it to (keys from sm's XE_SR_ERRORCODES.xml).

Messages are written for an admin and never contain a secret: callers build
them from validated, non-secret values only.
"""

# Keys used by the core, with the sm error number they carry, for reference and
# for the stand-in's error table.
XENERROR_KEYS = {
    "InvalidArg": 1,
    "SRInUse": 16,
    "InvalidDev": 19,
    "InvalidSecret": 20,
    "SRExists": 42,
    "SRNoSpace": 44,
    "SRUnavailable": 47,
    "LVMMaster": 58,
    "ISCSILogin": 68,
    "ConfigTargetMissing": 95,
    "ConfigTargetIQNMissing": 96,
    "ConfigSCSIid": 107,
    "ConfigParamsMissing": 115,
    "DNSError": 140,
    "ISCSITarget": 141,
    "ISCSIPort": 142,
    "SMGeneral": 202,
}


class RBDError(Exception):
    """Base of every error the core raises on purpose.

    key: the sm XenError key the driver raises for it.
    """

    key = "SMGeneral"

    def __init__(self, message, key=None):
        Exception.__init__(self, message)
        self.message = message
        if key is not None:
            self.key = key

    def __str__(self):
        return self.message


class ConfigError(RBDError):
    """A device-config value or CLI argument is invalid or missing."""

    key = "InvalidArg"


class AuthError(RBDError):
    """Ceph or SSH refused the credentials (or the host key)."""

    key = "ISCSILogin"


class UnreachableError(RBDError):
    """No monitor (or SSH host) answered within the timeout."""

    key = "ISCSITarget"


class CephError(RBDError):
    """Ceph answered, but with an error the caller did not expect."""

    key = "SMGeneral"


class NotFoundError(RBDError):
    """A pool, namespace or image does not exist."""

    key = "SMGeneral"


class InUseError(RBDError):
    """The image or device is not provably ours, or is busy."""

    key = "SRInUse"


class MapError(RBDError):
    """Kernel mapping or unmapping failed."""

    key = "SRUnavailable"


class TimeoutError_(RBDError):
    """A bounded wait ran out (named with _ to leave the builtin alone)."""

    key = "SRUnavailable"
