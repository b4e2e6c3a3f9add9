"""Baseline (b): the aiolimiter script — AsyncLimiter(25, 5) around each call, all gathered.

python bench/baseline_aiolimiter.py HOST leads.csv --code 201 --calls 25 --period 5
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import time
from collections import Counter

import aiohttp
from aiolimiter import AsyncLimiter


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("host")
    parser.add_argument("sheet")
    parser.add_argument("--code", default="201")
    parser.add_argument("--calls", type=int, default=25)
    parser.add_argument("--period", type=float, default=5.0)
    args = parser.parse_args()
    with open(args.sheet, newline="") as handle:  # noqa: ASYNC230 - read once, before any call
        leads = [row[0] for row in list(csv.reader(handle))[1:]]
    headers = {
        "x-LSQ-AccessKey": os.environ["LSQ_ACCESS_KEY"],
        "x-LSQ-SecretKey": os.environ["LSQ_SECRET_KEY"],
    }
    limiter = AsyncLimiter(args.calls, args.period)
    statuses: Counter[int] = Counter()
    started = time.monotonic()
    async with aiohttp.ClientSession(headers=headers) as session:

        async def delete(lead: str) -> None:
            async with limiter:
                body = {"ProspectId": lead, "ActivityEventList": [args.code]}
                async with session.post(
                    args.host + "/v2/ProspectActivity.svc/DeleteActivities", json=body
                ) as response:
                    await response.read()
                    statuses[response.status] += 1

        await asyncio.gather(*(delete(lead) for lead in leads))
    print(json.dumps({"statuses": statuses, "seconds": time.monotonic() - started}))


if __name__ == "__main__":
    asyncio.run(main())
