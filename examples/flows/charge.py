import time

from hero_logic import flow, services


@flow(
    name="charge",
    inputs={"customer": "string", "cents": "integer", "fail_first": {"type": "integer", "default": 0}},
    description="Charge a customer: retried when it fails, one charge per customer at a time.",
    services=["kv"],
    retries=3,
    retry_delay=1,
    retry_backoff=2,
    concurrency=1,
    concurrency_key="customer",
)
def charge(customer, cents, fail_first):
    """`fail_first` makes the first attempts fail, as a provider that is down would."""
    with flow.step("count the attempt") as s:
        key = f"attempts:{customer}"
        attempt = (services.kv.get(key=key) or 0) + 1
        services.kv.set(key=key, value=attempt)
        s.set(attempt=attempt)
    if attempt <= fail_first:
        raise RuntimeError(f"the payment provider is down (attempt {attempt})")
    with flow.step("charge", customer=customer, cents=cents):
        time.sleep(0.5)
    services.kv.delete(key=key)
    return {"customer": customer, "charged": cents, "attempts": attempt}
