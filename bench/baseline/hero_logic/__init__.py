"""A pure-Python stand-in for the hero_logic SDK, for the native baseline.

It does what the flow needs and no more: steps become dicts in a list, and the
`bench.echo` service answers in-process, as the built-in does in the sandbox.
"""

import json
import time

SPANS = []


class _Step:
    def __init__(self, name, attrs):
        self.span = {"name": name, "attrs": attrs, "start": time.time()}

    def set(self, **attrs):
        self.span["attrs"].update(attrs)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.span["end"] = time.time()
        SPANS.append(self.span)
        return False


class _Flow:
    def __call__(self, name=None, **_):
        def declare(func):
            func.flow_name = name or func.__name__
            return func

        return declare

    def step(self, name, **attrs):
        return _Step(name, attrs)


class _Service:
    def echo(self, **params):
        return json.loads(json.dumps(params))


class _Services:
    bench = _Service()


flow = _Flow()
services = _Services()
