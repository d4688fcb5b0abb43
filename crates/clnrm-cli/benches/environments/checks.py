"""The test every side of the environments bench runs, ten times: the orders example's
"create then fetch an order" (two HTTP requests) and a row check in the database."""

import json
import urllib.request


def request(method, url, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, parse(resp)
    except urllib.error.HTTPError as err:
        return err.code, parse(err)


def parse(resp):
    body = resp.read()
    if resp.headers.get("Content-Type", "").startswith("application/json"):
        return json.loads(body)
    return body.decode()


def create_fetch_and_check(base_url, psql, hermetic=True):
    """`psql(sql)` runs a query in the test's database and returns its `-tA` output."""
    status, order = request("POST", f"{base_url}/orders", {"product_id": 7, "quantity": 3})
    assert status == 201, (status, order)
    assert order["total_cents"] == 2400 and order["quantity"] == 3, order
    if hermetic:
        # A fresh database: the first order of this test is order 1.
        assert order["id"] == 1, order
    status, fetched = request("GET", f"{base_url}/orders/{order['id']}")
    assert status == 200 and fetched["id"] == order["id"], (status, fetched)
    row = psql(f"SELECT quantity, total_cents FROM orders WHERE id = {order['id']}")
    assert row.strip() == "3|2400", row


def wait_until(check, timeout=60.0, interval=0.05):
    import time

    deadline = time.monotonic() + timeout
    while True:
        try:
            if check():
                return
        except Exception:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError("not ready in time")
        time.sleep(interval)


def http_ready(base_url):
    return wait_until(lambda: request("GET", f"{base_url}/healthz")[0] == 200)
