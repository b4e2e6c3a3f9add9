"""Baseline (a): the loop people write by hand — one call at a time, sleeping W/N between
calls. Reads ProspectIds from a CSV's first column; keys from LSQ_ACCESS_KEY/LSQ_SECRET_KEY.

    python bench/baseline_loop.py HOST leads.csv --code 201 --calls 25 --period 5 --max-seconds 40
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import time
import urllib.error
import urllib.request


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("host")
    parser.add_argument("sheet")
    parser.add_argument("--code", default="201")
    parser.add_argument("--calls", type=int, default=25)
    parser.add_argument("--period", type=float, default=5.0)
    parser.add_argument("--max-seconds", type=float, default=60.0)
    args = parser.parse_args()
    with open(args.sheet, newline="") as handle:
        leads = [row[0] for row in list(csv.reader(handle))[1:]]
    headers = {
        "Content-Type": "application/json",
        "x-LSQ-AccessKey": os.environ["LSQ_ACCESS_KEY"],
        "x-LSQ-SecretKey": os.environ["LSQ_SECRET_KEY"],
    }
    started = time.monotonic()
    statuses: dict[int, int] = {}
    for lead in leads:
        if time.monotonic() - started > args.max_seconds:
            break
        body = json.dumps({"ProspectId": lead, "ActivityEventList": [args.code]}).encode()
        request = urllib.request.Request(  # noqa: S310 - our own emulator's http URL
            args.host + "/v2/ProspectActivity.svc/DeleteActivities", data=body, headers=headers
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
                status = response.status
        except urllib.error.HTTPError as error:
            status = error.code
        statuses[status] = statuses.get(status, 0) + 1
        time.sleep(args.period / args.calls)
    print(json.dumps({"statuses": statuses, "seconds": time.monotonic() - started}))


if __name__ == "__main__":
    main()
