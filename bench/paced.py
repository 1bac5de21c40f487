# Waits for a watcher to connect, then opens steps at a steady pace: the
# span-to-WebSocket latency.
import time
from hero_logic import flow


@flow(name="paced", inputs={"count": "integer"})
def paced(count):
    time.sleep(0.3)
    for i in range(count):
        with flow.step("s"):
            pass
        if i % 20 == 0:
            time.sleep(0.001)
    return count
