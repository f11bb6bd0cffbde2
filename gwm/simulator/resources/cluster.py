"""The cluster's RAPI resources: version, features, info, OS list, modify."""

from __future__ import annotations

import asyncio
from typing import Any

from gwm.simulator.http import HttpError, Req, Resources

RESOURCES = Resources()

FEATURES = [
    "instance-create-reqv1",
    "node-migrate-reqv1",
    "instance-reinstall-reqv1",
    "node-evac-res1",
]
# what OpOsDiagnose is asked for: /2/os?bulk=1 (Ganeti >= 3.1), plain /2/os
OS_BULK_FIELDS = [
    "name",
    "valid",
    "variants",
    "parameters",
    "api_versions",
    "blacklisted",
    "hidden",
    "trusted",
]
OS_FIELDS = ["name", "variants"]


@RESOURCES.resource("/", "root", needs_master=False)
class RRoot:
    @staticmethod
    async def GET(r: Req) -> Any:
        return None


@RESOURCES.resource("/2", "2", needs_master=False)
class R2:
    @staticmethod
    async def GET(r: Req) -> Any:
        return None


@RESOURCES.resource("/version", "version", needs_master=False)
class RVersion:
    @staticmethod
    async def GET(r: Req) -> Any:
        return 2


@RESOURCES.resource("/2/features", "features", needs_master=False)
class RFeatures:
    @staticmethod
    async def GET(r: Req) -> Any:
        return list(FEATURES)


@RESOURCES.resource("/2/info", "info")
class RInfo:
    @staticmethod
    async def GET(r: Req) -> Any:
        info = dict(r.sim.state.info)
        info["master"] = r.sim.state.master.name
        return info


@RESOURCES.resource("/2/os", "os")
class ROs:
    @staticmethod
    async def GET(r: Req) -> Any:
        # rlib2 runs an OpOsDiagnose job and polls it to the end, every call.
        # Ganeti 3.0 ignores ?bulk here; 3.1 answers dicts (SimConfig.os_bulk).
        bulk = r.bulk and r.sim.config.os_bulk
        fields = OS_BULK_FIELDS if bulk else OS_FIELDS
        op = r.sim.opcodes.build("OP_OS_DIAGNOSE", {"output_fields": list(fields), "names": []}, [])
        job_id = r.submit([op])
        job = r.sim.queue.jobs[job_id]
        while not job.finalized:
            await asyncio.sleep(0.01)
        result = job.ops[0].result
        if not isinstance(result, list):
            raise HttpError(502, "Can't get OS list")
        if bulk:
            out = []
            for row in result:
                item = dict(zip(fields, row, strict=True))
                item["parameters"] = [
                    {"name": p[0], "description": p[1]} for p in item["parameters"]
                ]
                out.append(item)
            return out
        names = []
        for name, variants in result:
            names.extend([f"{name}+{v}" for v in variants] if variants else [name])
        return names


@RESOURCES.resource("/2/modify", "cluster_modify")
class RClusterModify:
    @staticmethod
    async def PUT(r: Req) -> Any:
        if isinstance(r.body, dict) and "compression_tools" in r.body:
            raise HttpError(403, "The parameter compression_tools cannot be set via RAPI")
        return r.submit_one("OP_CLUSTER_SET_PARAMS", r.body, {})


@RESOURCES.resource("/2/redistribute-config", "redist_config")
class RRedist:
    @staticmethod
    async def PUT(r: Req) -> Any:
        return r.submit_one("OP_CLUSTER_REDIST_CONF", r.body, {})
