"""Cluster-wide calls: version, features, info, OS list, cluster tags, redistribute."""

from __future__ import annotations

from gwm.rapi import RapiClusterInfo, RapiOperatingSystem
from tests.contract.conftest import Target, assert_stored_op

FEATURES = {
    "instance-create-reqv1",
    "instance-reinstall-reqv1",
    "node-migrate-reqv1",
    "node-evac-res1",
}


def test_version_is_2(target: Target) -> None:
    assert target.client.get_version() == 2
    # /version needs no particular right: the read-only user gets it too
    assert target.reader.get_version() == 2


def test_features_are_the_four_strings_in_any_order(target: Target) -> None:
    features = target.client.get_features()
    assert isinstance(features, list)
    # Ganeti builds the list from a set: the order changes between runs
    assert set(features) == FEATURES
    assert len(features) == len(FEATURES)


def test_cluster_info(target: Target) -> None:
    info = target.reader.get_cluster_info()
    assert isinstance(info, RapiClusterInfo)
    assert info.name == target.cluster_name
    assert info.master == target.node
    assert info.software_version is not None and info.software_version.startswith("3.0.")
    assert info.enabled_hypervisors == ["fake"]
    assert info.default_hypervisor == "fake"
    assert set(info.enabled_disk_templates or []) == {"diskless", "file", "sharedfile"}
    assert info.beparams is not None and set(info.beparams) == {"default"}
    assert info.hvparams is not None and "fake" in info.hvparams
    assert info.ipolicy is not None and info.ipolicy["minmax"][0]["min"]["memory-size"] == 32
    assert info.default_iallocator == "hail"
    assert isinstance(info.ctime, float) and isinstance(info.mtime, float)
    assert isinstance(info.tags, list)
    # /2/info has no serial_no (unlike every other object)
    assert "serial_no" not in (info.model_extra or {})
    # rlib2 adds the old names as aliases
    extra = info.model_extra or {}
    assert "vg_name" in extra and "drbd_helper" in extra


def test_os_list_names_the_os(target: Target) -> None:
    names = target.client.list_os()
    assert target.os_name in names
    assert all(isinstance(n, str) for n in names)


def test_os_bulk_is_ignored_by_ganeti_3_0(target: Target) -> None:
    # Ganeti 3.0 answers ?bulk=1 with names only; the client fills in `name`
    entries = target.client.list_os_bulk()
    assert all(isinstance(e, RapiOperatingSystem) for e in entries)
    by_name = {e.name: e for e in entries}
    assert target.os_name in by_name
    assert by_name[target.os_name].valid is None  # nothing but the name came back


def test_cluster_tags_add_and_remove(target: Target) -> None:
    tags = [target.unique_name("tag"), target.unique_name("tag")]
    target.track_cluster_tags(*tags)
    before = target.client.get_cluster_tags()
    assert not set(tags) & set(before)

    job = target.succeed(target.client.add_cluster_tags(tags, reason="contract: tag the cluster"))
    assert job.summary == ["TAGS_SET"]
    assert job.opresult == [None]
    assert_stored_op(job, "dry_run", "kind", "tags")  # no "name" for the cluster
    assert job.user_reasons == ["contract: tag the cluster"]
    assert set(tags) <= set(target.client.get_cluster_tags())
    assert set(tags) <= set(target.reader.get_cluster_info().tags or [])

    job = target.succeed(target.client.delete_cluster_tags(tags))
    assert job.summary == ["TAGS_DEL"]
    assert_stored_op(job, "dry_run", "kind", "tags")
    assert not set(tags) & set(target.client.get_cluster_tags())


def test_removing_a_missing_cluster_tag_fails_the_job(target: Target) -> None:
    tag = target.unique_name("tag")
    job = target.fail(target.client.delete_cluster_tags([tag]))
    assert job.error is not None
    assert job.error.error_class == "OpPrereqError"
    assert job.error.code == "unknown_entity"
    assert job.error.message == f"Tag(s) '{tag}' not found"


def test_cluster_tags_dry_run_changes_nothing(target: Target) -> None:
    tag = target.unique_name("tag")
    target.track_cluster_tags(tag)
    job = target.succeed(target.client.add_cluster_tags([tag], dry_run=True))
    assert (job.ops or [{}])[0]["dry_run"] is True
    assert [e.message for e in (job.oplog or [[]])[0]] == [
        " - INFO: dry-run mode requested, not actually executing the operation"
    ]
    assert tag not in target.client.get_cluster_tags()


def test_redistribute_config(target: Target) -> None:
    job = target.succeed(target.client.redistribute_config(reason="contract: redist"))
    assert job.summary == ["CLUSTER_REDIST_CONF"]
    assert_stored_op(job)
    assert job.opresult == [None]
    assert job.user_reasons == ["contract: redist"]
