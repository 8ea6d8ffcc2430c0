"""Shared steps of the FHIR bulk export tests: kick-off, polling, downloading and checking the files."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import orjson
from fhir.resources.R4B import get_fhir_model_class

from resolvers.fhir.common import references
from tests.conftest import GraphQLClient

ASYNC = {"Accept": "application/fhir+json", "Prefer": "respond-async"}


async def headers(client: GraphQLClient, as_: str) -> dict[str, str]:
    return {**ASYNC, "Authorization": f"Bearer {await client.token(as_)}"}


async def kick_off(client: GraphQLClient, path: str, as_: str, **params: str) -> httpx.Response:
    return await client.http.get(path, params=params, headers=await headers(client, as_))


async def wait(client: GraphQLClient, status_url: str, as_: str, *, seconds: float = 60) -> httpx.Response:
    """Poll the status URL (202 with X-Progress) until it answers otherwise."""
    auth = {"Authorization": f"Bearer {await client.token(as_)}"}
    for _ in range(int(seconds * 20)):
        response = await client.http.get(status_url, headers=auth)
        if response.status_code != 202:
            return response
        assert response.headers["X-Progress"]
        await asyncio.sleep(0.05)
    raise AssertionError("the export did not finish")


async def download(client: GraphQLClient, manifest: dict[str, Any], as_: str) -> dict[str, list[dict[str, Any]]]:
    """Every output file of a manifest, by resource type (a type split over several files: their lines in order);
    each line one resource, counts as the manifest says."""
    auth = {"Authorization": f"Bearer {await client.token(as_)}", "Accept": "application/fhir+ndjson"}
    files: dict[str, list[dict[str, Any]]] = {}
    for output in manifest["output"]:
        response = await client.http.get(output["url"], headers=auth)
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("application/fhir+ndjson")
        lines = [orjson.loads(line) for line in response.content.splitlines()]
        assert len(lines) == output["count"] and all(r["resourceType"] == output["type"] for r in lines)
        files.setdefault(output["type"], []).extend(lines)
    return files


def check_files(files: dict[str, list[dict[str, Any]]], *, validate: bool = True, only: str | None = None) -> None:
    """Every resource validates (R4B models), ids are unique per type, and references across files resolve (those
    to `only` that type, for an export of some types: the others' targets were not asked for)."""
    known: set[str] = set()
    for kind, resources in files.items():
        model = get_fhir_model_class(kind)
        for resource in resources:
            if validate:
                model.model_validate(resource)
            key = f"{kind}/{resource['id']}"
            assert key not in known, key
            known.add(key)
    targets = {target for resources in files.values() for r in resources for target in references(r)}
    if only is not None:
        targets = {target for target in targets if target.startswith(f"{only}/")}
    dangling = targets - known
    assert dangling == set()
