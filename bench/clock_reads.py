# The benchmark's journal flow: `count` wall-clock reads, each an answer
# the host journals.
import time

from hero_logic import flow


@flow(name="clock_reads", inputs={"count": "integer"})
def clock_reads(count):
    for _ in range(count):
        time.time()
    return count
