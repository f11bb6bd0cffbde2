"""The cluster registry and gwm's cache of each cluster's Ganeti objects.

Each cached object keeps gwm's ``status`` (docs/status-model.md)
beside Ganeti's raw status fields and ``synced_at``. Columns hold what users
filter and sort on; the rest of Ganeti's answer stays in JSON columns with
Ganeti's own names.
"""

from __future__ import annotations

from django.db import models

from gwm.kit.jsonfield import JSONField


class ClusterStatus(models.TextChoices):
    PROVISIONING = "PROVISIONING"
    AVAILABLE = "AVAILABLE"
    UNREACHABLE = "UNREACHABLE"
    ERROR = "ERROR"


class NodeStatus(models.TextChoices):
    ONLINE = "ONLINE"
    DRAINED = "DRAINED"
    OFFLINE = "OFFLINE"
    BUSY = "BUSY"
    UNKNOWN = "UNKNOWN"


class InstanceStatus(models.TextChoices):
    PROVISIONING = "PROVISIONING"
    RUNNING = "RUNNING"
    STOPPED = "STOPPED"
    BUSY = "BUSY"
    ERROR = "ERROR"
    DELETING = "DELETING"
    UNKNOWN = "UNKNOWN"


class Cluster(models.Model):
    name = models.SlugField(max_length=63, unique=True)
    description = models.TextField(blank=True, default="")
    rapi_url = models.CharField(max_length=255)
    username = models.CharField(max_length=128, blank=True, default="")
    password_encrypted = models.TextField(blank=True, default="")
    tls_ca_pem = models.TextField(blank=True, default="")
    tls_fingerprint = models.CharField(max_length=128, blank=True, default="")
    tls_verify = models.BooleanField(default=True)

    watch_interval = models.FloatField(
        default=1.0,
        help_text="shortest time between reads of Ganeti's job list (0: no watch, fast rounds"
        " instead); stretched to stay within the cluster's request budget",
    )
    fast_interval = models.FloatField(
        default=5.0, help_text="seconds between fast rounds (while the job list is not watched)"
    )
    runtime_interval = models.FloatField(
        default=15.0, help_text="shortest time between runtime sweeps; stretched by the budget"
    )
    slow_interval = models.FloatField(default=60.0, help_text="seconds between full syncs")
    stale_after = models.FloatField(
        default=180.0, help_text="seconds after which unsynced objects read UNKNOWN"
    )

    status = models.CharField(
        max_length=16, choices=ClusterStatus.choices, default=ClusterStatus.PROVISIONING
    )
    error = models.TextField(blank=True, default="")
    error_at = models.DateTimeField(null=True, blank=True)

    # What Ganeti says about itself (/2/info).
    ganeti_name = models.CharField(max_length=255, blank=True, default="")
    uuid = models.CharField(max_length=64, blank=True, default="")
    master = models.CharField(max_length=255, blank=True, default="")
    software_version = models.CharField(max_length=32, blank=True, default="")
    info = JSONField(default=dict, blank=True)
    tags = JSONField(default=list, blank=True)
    ctime = models.FloatField(null=True, blank=True)
    mtime = models.FloatField(null=True, blank=True)

    synced_at = models.DateTimeField(null=True, blank=True)
    fast_synced_at = models.DateTimeField(null=True, blank=True)
    watch_synced_at = models.DateTimeField(null=True, blank=True)
    runtime_synced_at = models.DateTimeField(null=True, blank=True)
    slow_synced_at = models.DateTimeField(null=True, blank=True)
    runtime_cost = models.FloatField(
        default=0.0, help_text="seconds the last runtime sweep took Ganeti"
    )
    next_fast_at = models.DateTimeField(null=True, blank=True)
    next_watch_at = models.DateTimeField(null=True, blank=True)
    next_runtime_at = models.DateTimeField(null=True, blank=True)
    next_slow_at = models.DateTimeField(null=True, blank=True)
    last_job_id = models.BigIntegerField(default=0, help_text="highest Ganeti job id seen")
    open_job_ids = JSONField(
        default=list, blank=True, help_text="Ganeti jobs seen unfinished, re-read until they end"
    )

    # One worker syncs a cluster at a time: a lease taken by compare-and-set.
    lease_owner = models.CharField(max_length=128, blank=True, default="")
    lease_until = models.DateTimeField(null=True, blank=True)

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class CachedObject(models.Model):
    """Fields every cached Ganeti object has."""

    cluster = models.ForeignKey(Cluster, on_delete=models.CASCADE, related_name="+")
    name = models.CharField(max_length=255)
    uuid = models.CharField(max_length=64, blank=True, default="")
    tags = JSONField(default=list, blank=True)
    serial_no = models.BigIntegerField(null=True, blank=True)
    ctime = models.FloatField(null=True, blank=True)
    mtime = models.FloatField(null=True, blank=True)
    synced_at = models.DateTimeField()

    class Meta:
        abstract = True
        ordering = ["cluster_id", "name"]

    def __str__(self) -> str:
        return self.name


class Node(CachedObject):
    cluster = models.ForeignKey(Cluster, on_delete=models.CASCADE, related_name="nodes")
    status = models.CharField(max_length=16, choices=NodeStatus.choices)
    role = models.CharField(max_length=1, blank=True, default="")
    offline = models.BooleanField(default=False)
    drained = models.BooleanField(default=False)
    master_candidate = models.BooleanField(default=False)
    master_capable = models.BooleanField(default=True)
    vm_capable = models.BooleanField(default=True)
    group_uuid = models.CharField(max_length=64, blank=True, default="")
    group_name = models.CharField(max_length=255, blank=True, default="")
    primary_ip = models.CharField(max_length=64, blank=True, default="")
    secondary_ip = models.CharField(max_length=64, blank=True, default="")
    ndparams = JSONField(default=dict, blank=True)
    # Resources: runtime fields, refreshed by the runtime sweep.
    memory_total = models.BigIntegerField(null=True, blank=True)
    memory_free = models.BigIntegerField(null=True, blank=True)
    memory_node = models.BigIntegerField(null=True, blank=True)
    disk_total = models.BigIntegerField(null=True, blank=True)
    disk_free = models.BigIntegerField(null=True, blank=True)
    spindles_total = models.BigIntegerField(null=True, blank=True)
    spindles_free = models.BigIntegerField(null=True, blank=True)
    cpu_total = models.IntegerField(null=True, blank=True)
    cpu_nodes = models.IntegerField(null=True, blank=True)
    cpu_sockets = models.IntegerField(null=True, blank=True)
    cpu_cores = models.IntegerField(null=True, blank=True)
    primary_instances = JSONField(default=list, blank=True)
    secondary_instances = JSONField(default=list, blank=True)
    reachable = models.BooleanField(
        null=True, blank=True, help_text="did the node answer the last runtime sweep"
    )
    held_by_job = models.BigIntegerField(
        null=True, blank=True, help_text="the gwm job whose operation holds this node BUSY"
    )
    runtime_synced_at = models.DateTimeField(null=True, blank=True)

    class Meta(CachedObject.Meta):
        constraints = [models.UniqueConstraint(fields=["cluster", "name"], name="node_unique_name")]


class NodeGroup(CachedObject):
    cluster = models.ForeignKey(Cluster, on_delete=models.CASCADE, related_name="groups")
    alloc_policy = models.CharField(max_length=32, blank=True, default="")
    node_list = JSONField(default=list, blank=True)
    ipolicy = JSONField(default=dict, blank=True)
    diskparams = JSONField(default=dict, blank=True)
    ndparams = JSONField(default=dict, blank=True)
    networks = JSONField(default=list, blank=True)

    class Meta(CachedObject.Meta):
        constraints = [
            models.UniqueConstraint(fields=["cluster", "name"], name="group_unique_name")
        ]


class Network(CachedObject):
    cluster = models.ForeignKey(Cluster, on_delete=models.CASCADE, related_name="networks")
    network = models.CharField(max_length=64, blank=True, default="")
    gateway = models.CharField(max_length=64, blank=True, default="")
    network6 = models.CharField(max_length=64, blank=True, default="")
    gateway6 = models.CharField(max_length=64, blank=True, default="")
    mac_prefix = models.CharField(max_length=32, blank=True, default="")
    free_count = models.IntegerField(null=True, blank=True)
    reserved_count = models.IntegerField(null=True, blank=True)
    map = models.TextField(blank=True, default="")
    group_list = JSONField(default=list, blank=True)
    inst_list = JSONField(default=list, blank=True)
    external_reservations = models.TextField(blank=True, default="")

    class Meta(CachedObject.Meta):
        constraints = [
            models.UniqueConstraint(fields=["cluster", "name"], name="network_unique_name")
        ]


class Instance(CachedObject):
    cluster = models.ForeignKey(Cluster, on_delete=models.CASCADE, related_name="instances")
    status = models.CharField(max_length=16, choices=InstanceStatus.choices)
    # Ganeti's raw status fields, beside gwm's status.
    ganeti_status = models.CharField(max_length=32, blank=True, default="")
    admin_state = models.CharField(max_length=16, blank=True, default="")
    oper_state = models.BooleanField(null=True, blank=True)
    oper_ram = models.BigIntegerField(null=True, blank=True)
    oper_vcpus = models.IntegerField(null=True, blank=True)

    os = models.CharField(max_length=128, blank=True, default="")
    primary_node = models.CharField(max_length=255, blank=True, default="")
    secondary_nodes = JSONField(default=list, blank=True)
    disk_template = models.CharField(max_length=32, blank=True, default="")
    memory = models.BigIntegerField(null=True, blank=True, help_text="MiB (beparams maxmem)")
    vcpus = models.IntegerField(null=True, blank=True)
    disks = JSONField(default=list, blank=True)
    nics = JSONField(default=list, blank=True)
    disk_usage = models.BigIntegerField(null=True, blank=True)
    network_port = models.IntegerField(null=True, blank=True)
    beparams = JSONField(default=dict, blank=True)
    hvparams = JSONField(default=dict, blank=True)
    osparams = JSONField(default=dict, blank=True)
    custom_beparams = JSONField(default=dict, blank=True)
    custom_hvparams = JSONField(default=dict, blank=True)
    custom_osparams = JSONField(default=dict, blank=True)
    custom_nicparams = JSONField(default=list, blank=True)
    # "\ntag1\ntag2\n": lets ?tag= filter with one portable LIKE on SQLite and PostgreSQL.
    tag_index = models.TextField(blank=True, default="")
    held_by_job = models.BigIntegerField(
        null=True,
        blank=True,
        help_text="the gwm job whose operation holds this instance PROVISIONING/BUSY/DELETING",
    )
    runtime_synced_at = models.DateTimeField(null=True, blank=True)

    class Meta(CachedObject.Meta):
        constraints = [
            models.UniqueConstraint(fields=["cluster", "name"], name="instance_unique_name")
        ]
        indexes = [
            models.Index(fields=["status"], name="instance_status"),
            models.Index(fields=["name", "id"], name="instance_name_id"),
            models.Index(fields=["cluster", "primary_node"], name="instance_pnode"),
        ]
