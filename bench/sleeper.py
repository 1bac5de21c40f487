# The waiting benchmark's flow: a run that spends its life in time.sleep,
# holding an instance but no CPU.
import time

from hero_logic import flow


@flow(name="sleeper", inputs={"seconds": "number"})
def sleeper(seconds):
    with flow.step("sleep"):
        time.sleep(seconds)
    return {"slept": seconds}
