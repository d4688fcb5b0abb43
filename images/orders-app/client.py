"""A small HTTP client for the orders example's steps (the image has no curl):

    python3 /app/client.py METHOD PATH [JSON]

sends the request to http://localhost:8080 (or $ORDERS_URL) and prints the status
code and the body on one line; exits 0 whatever the status (the step checks it),
1 when no answer comes.
"""
import json
import os
import sys
import urllib.error
import urllib.request


def main() -> int:
    if len(sys.argv) not in (3, 4):
        print(__doc__.strip(), file=sys.stderr)
        return 2
    method, path = sys.argv[1], sys.argv[2]
    body = sys.argv[3].encode() if len(sys.argv) == 4 else None
    if body is not None:
        json.loads(body)  # a malformed argument is the caller's mistake: fail loudly
    base = os.environ.get("ORDERS_URL", "http://localhost:8080")
    request = urllib.request.Request(
        base + path,
        data=body,
        method=method,
        headers={"Content-Type": "application/json"} if body is not None else {},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            status, text = answer.status, answer.read().decode()
    except urllib.error.HTTPError as e:
        status, text = e.code, e.read().decode()
    except OSError as e:
        print(f"client: {method} {base + path}: {e}", file=sys.stderr)
        return 1
    print(status, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
