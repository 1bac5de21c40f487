"""Run one flow natively, as `python3 run.py FLOW.py NAME INPUT_JSON` (the baseline)."""

import json
import sys

sys.path.insert(0, __import__("os").path.dirname(__file__))
namespace = {"__name__": "flow"}
with open(sys.argv[1]) as source:
    exec(compile(source.read(), sys.argv[1], "exec"), namespace)
func = next(v for v in namespace.values() if getattr(v, "flow_name", None) == sys.argv[2])
print(json.dumps(func(**json.loads(sys.argv[3]))))
