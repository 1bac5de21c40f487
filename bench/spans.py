# Emits `count` empty steps: the span path's throughput.
from hero_logic import flow


@flow(name="many_spans", inputs={"count": "integer"})
def many_spans(count):
    for i in range(count):
        with flow.step("s"):
            pass
    return count
