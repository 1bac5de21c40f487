"""The guest component's entry point: the `flow-guest` world's exports.

componentize-py runs this module at build time and snapshots the result, so the
imports below (the SDK and the curated standard library) cost nothing per run.
"""

import gc

import wit_world
from componentize_py_types import Err

from hero_logic import _host, _runtime, _stdlib

_stdlib.preload()
_stdlib.install_guard()

# Everything imported so far lives in the build snapshot. Freezing it moves
# those objects out of the collector's reach, so a collection during a run
# does not write to (and so dirty) every page of the snapshot's heap: every
# dirtied page is copied back from the image when the instance is recycled.
gc.collect()
gc.freeze()


def _answer(call, *args):
    # Outputs, flow descriptions and error messages can carry any str a flow
    # made: each answer crosses as text the host can take.
    try:
        return _host.text(call(*args))
    except _runtime.GuestError as exc:
        raise Err(_host.text(exc.to_json()))


class WitWorld(wit_world.WitWorld):
    def describe(self, source: str) -> str:
        return _answer(_runtime.describe, source)

    def run(self, source: str, entry: str, input_json: str) -> str:
        return _answer(_runtime.run, source, entry, input_json)
