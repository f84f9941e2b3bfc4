"""Stand-in for XAPI's XenAPIPlugin module, which sm's host plugins (on-slave,
tapdisk-pause, ...) use: `dispatch(fn_table)` reads the XML-RPC call XAPI puts in argv[1]
(session ref, args map), runs fn(session, args) and prints XAPI's answer struct:
{'Status': 'Success', 'Value': result} or {'Status': 'Failure', 'ErrorDescription': [...]}.
"""
import sys
import xmlrpc.client

import XenAPI


class Failure(Exception):
    """Raised by plugins to return a XAPI error; params: [code, args...]."""

    def __init__(self, code, params):
        Exception.__init__(self)
        self.params = [code] + list(params)


def success_message(result):
    return xmlrpc.client.dumps(({"Status": "Success", "Value": result},), "", True)


def failure_message(description):
    return xmlrpc.client.dumps(({"Status": "Failure", "ErrorDescription": description},), "", True)


def dispatch(fn_table):
    if len(sys.argv) != 2:
        raise SystemExit("Incorrect number of commandline arguments")
    params, methodname = xmlrpc.client.loads(sys.argv[1])
    session_id, args = params[0], params[1]
    if methodname not in fn_table:
        print(failure_message(["UNKNOWN_XENAPI_PLUGIN_FUNCTION", methodname]))
        return
    x = XenAPI.xapi_local()
    x._session = session_id
    x.ref = session_id
    try:
        print(success_message(fn_table[methodname](x, args)))
    except SystemExit:
        raise
    except Failure as e:
        print(failure_message(e.params))
    except XenAPI.Failure as e:
        print(failure_message(e.details))
    except Exception as e:  # noqa: BLE001 - XAPI's answer for any plugin exception
        print(failure_message(["XENAPI_PLUGIN_FAILURE", methodname, e.__class__.__name__, str(e)]))
