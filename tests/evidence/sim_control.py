"""The command actuator's program for the simulator: `sim_control.py URL OPERATION UNIT`.

`stop` clears the component's fault (a real restart clears a broken process's state, and the
in-process simulator cannot be restarted); `start` only says so.
"""

import sys
import urllib.request

url, operation, unit = sys.argv[1:4]
if operation == "stop":
    request = urllib.request.Request(f"{url}/admin/fault", method="DELETE")
    with urllib.request.urlopen(request, timeout=5) as answer:
        print(f"{unit} stopped; fault cleared ({answer.status})")
else:
    print(f"{unit} {operation}ed")
