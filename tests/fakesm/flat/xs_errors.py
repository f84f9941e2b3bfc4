"""Stand-in of sm's xs_errors: XenError(key, opterr=None) looks the key up in
XE_SR_ERRORCODES.xml next to this file and returns an SROSError carrying the
number (.errno) and the description (+ " [opterr=...]"); .toxml() gives the
XML-RPC fault XAPI reads."""
import errno
import os
import xml.dom.minidom
import xmlrpc.client

import util

DEF_LOC = os.path.dirname(__file__)
XML_DEFS = os.path.join(DEF_LOC, 'XE_SR_ERRORCODES.xml')


class SRException(Exception):
    """Exception raised by storage repository operations"""
    errno = errno.EINVAL

    def __init__(self, reason):
        Exception.__init__(self, reason)

    def toxml(self):
        return xmlrpc.client.dumps(xmlrpc.client.Fault(int(self.errno), str(self)), "", True)


class SROSError(SRException):
    """Wrapper for OSError"""

    def __init__(self, errno, reason):
        self.errno = errno
        Exception.__init__(self, reason)


def _codes():
    dom = xml.dom.minidom.parse(XML_DEFS)
    table = {}
    for code in dom.getElementsByTagName('code'):
        fields = {}
        for child in code.childNodes:
            if child.nodeType == child.ELEMENT_NODE:
                fields[child.nodeName] = "".join(
                    t.data for t in child.childNodes if t.nodeType == t.TEXT_NODE)
        table[fields['name']] = fields
    return table


class XenError(Exception):
    def __new__(self, key, opterr=None):
        if not os.path.exists(XML_DEFS):
            raise Exception("No XML def file found")
        table = _codes()
        if key in table:
            number = int(table[key]['value'])
            message = table[key]['description']
            if opterr is not None:
                message += " [opterr=%s]" % opterr
            util.SMlog("Raising exception [%d, %s]" % (number, message))
            return SROSError(number, message)
        return SROSError(1, "Error reporting error, unknown key %s" % key)
