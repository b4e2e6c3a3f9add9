"""Raw calls to the emulator, as a client would make them: the demo keys' headers, a delete
body, and one POST that answers (status, JSON or text)."""

from __future__ import annotations

import json
from typing import Any

import aiohttp

from bulk_delete.api import DELETE_PATH
from bulk_delete.emulator.server import DEMO_ACCESS_KEY, DEMO_SECRET_KEY

G1 = "3aee22bd-8419-422a-8242-c510df9af021"
HEADERS = {"x-LSQ-AccessKey": DEMO_ACCESS_KEY, "x-LSQ-SecretKey": DEMO_SECRET_KEY}
BODY = {
    "ProspectId": G1,
    "ActivityEventList": ["163", "166"],
    "FromDate": "2018-04-30 18:30:00",
    "ToDate": "2018-06-20 18:29:59",
}


async def call(
    url: str,
    *,
    body: Any = BODY,
    headers: dict[str, str] | None = None,
    params: dict[str, str] | None = None,
    data: bytes | None = None,
    path: str = DELETE_PATH,
    total: float = 5,
) -> tuple[int, Any]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=total)) as session:
        kwargs: dict[str, Any] = {
            "headers": HEADERS if headers is None else headers,
            "params": params,
        }
        if data is not None:
            kwargs["data"] = data
        else:
            kwargs["json"] = body
        async with session.post(url + path, **kwargs) as response:
            text = await response.text()
            try:
                return response.status, json.loads(text)
            except json.JSONDecodeError:
                return response.status, text
