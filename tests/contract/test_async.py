"""The same calls through ``AsyncRapiClient``: same answers, same exceptions."""

from __future__ import annotations

import asyncio

import pytest

from gwm.rapi import RapiForbidden, RapiJobNotFound, RapiNotFound
from gwm.rapi.constants import InstanceStatus, JobStatus
from tests.contract.conftest import Target


async def test_async_reads_side_by_side(target: Target) -> None:
    async with target.async_client(read_only=True) as rapi:
        version, features, info, nodes, groups = await asyncio.gather(
            rapi.get_version(),
            rapi.get_features(),
            rapi.get_cluster_info(),
            rapi.list_nodes(),
            rapi.list_groups(),
        )
    assert version == 2
    assert set(features) == set(target.client.get_features())
    assert info.name == target.cluster_name and info.master == target.node
    assert target.node in nodes
    assert target.group in groups


async def test_async_instance_lifecycle(target: Target) -> None:
    name = target.unique_name()
    target.track_instance(name)
    logs: list[str] = []
    async with target.async_client() as rapi:
        job_id = await rapi.create_instance(
            name, **target.instance_spec(), reason="contract: async create"
        )
        job = await rapi.wait_for_job(job_id, timeout=60, on_log=lambda e: logs.append(e.message))
        assert job.status == JobStatus.SUCCESS
        assert job.user_reasons == ["contract: async create"]
        assert logs and logs[-1] == "* starting instance..."
        assert (await rapi.get_instance(name)).status == InstanceStatus.RUNNING

        job = await rapi.wait_for_job(await rapi.shutdown_instance(name, timeout=0), timeout=60)
        assert job.status == JobStatus.SUCCESS
        assert (await rapi.get_instance(name)).status == InstanceStatus.ADMIN_DOWN

        job = await rapi.wait_for_job(await rapi.delete_instance(name), timeout=60)
        assert job.status == JobStatus.SUCCESS
        with pytest.raises(RapiNotFound):
            await rapi.get_instance(name)


async def test_async_errors(target: Target) -> None:
    async with target.async_client(read_only=True) as reader:
        with pytest.raises(RapiForbidden):
            await reader.add_cluster_tags([target.unique_name("tag")])
        with pytest.raises(RapiNotFound) as caught:
            await reader.get_instance(target.unique_name())
        assert caught.value.explain == "Nothing matches the given URI"
        with pytest.raises(RapiJobNotFound):
            await reader.get_job(987_654_321)


async def test_async_job_wait_and_cancel(target: Target) -> None:
    async with target.async_client() as rapi:
        with target.hold() as reason:
            job_id = await rapi.startup_instance(target.unique_name(), reason=reason)
            first = await rapi.wait_for_job_change(job_id)
            assert first.changed is True and first.status == JobStatus.QUEUED
            assert await rapi.cancel_job(job_id) == (True, f"Dequeued job {job_id}")
        job = await rapi.wait_for_job(job_id, timeout=30)
        assert job.status == JobStatus.CANCELED
        assert [j for j in await rapi.list_jobs() if j == job_id] == [job_id]
