"""What ``RapiClient`` and ``AsyncRapiClient`` share: their methods and their constructor.

:class:`RapiMethods` binds every RAPI method once to its builder in
:mod:`gwm.rapi.builders` (``raw`` to :func:`raw_call`); :class:`ClientBase`
adds the constructor. The clients themselves (:mod:`gwm.rapi.client`) only
say how to send, sleep and fetch the certificate to pin.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import os
import ssl
import threading
from collections.abc import Callable, Coroutine, Mapping
from typing import Any, Generic, ParamSpec, Self, TypeVar, overload

import httpx

from gwm.rapi.builders import cluster, groups, instance_disks, instances, jobs, networks, nodes
from gwm.rapi.builders import query as queries
from gwm.rapi.calls import Flow, RapiCall, RapiRequest
from gwm.rapi.config import DEFAULT_TIMEOUT, ClientConfig
from gwm.rapi.tls import fetch_peer_certificate

P = ParamSpec("P")
T = TypeVar("T")


def _result_signature(source: Callable[..., Any]) -> inspect.Signature:
    """The builder's signature, returning what the call parses to, not the call."""
    signature = inspect.signature(source)
    annotation = signature.return_annotation
    if isinstance(annotation, str):
        for wrapper in ("RapiCall[", "Flow["):
            if annotation.startswith(wrapper) and annotation.endswith("]"):
                annotation = annotation[len(wrapper) : -1]
    return signature.replace(return_annotation=annotation)


class _Method(Generic[P, T]):
    """A client method made from a builder: plain on RapiClient, awaitable on AsyncRapiClient."""

    def __init__(self, flow: Callable[P, Flow[T]], source: Callable[..., Any]) -> None:
        self._flow = flow
        self._source = source
        self._signature = _result_signature(source)

    def _wrap(self, method: Callable[..., Any]) -> Any:
        functools.update_wrapper(method, self._source)
        method.__signature__ = self._signature  # type: ignore[attr-defined]
        return method

    @overload
    def __get__(self, obj: None, owner: type[Any]) -> Self: ...
    @overload
    def __get__(
        self, obj: ClientBase[httpx.AsyncBaseTransport, httpx.AsyncClient], owner: type[Any]
    ) -> Callable[P, Coroutine[Any, Any, T]]: ...
    @overload
    def __get__(
        self, obj: ClientBase[httpx.BaseTransport, httpx.Client], owner: type[Any]
    ) -> Callable[P, T]: ...
    def __get__(self, obj: Any, owner: type[Any]) -> Any:
        if obj is None:
            return self
        if not isinstance(obj, ClientBase):
            raise TypeError(f"{type(obj).__name__} is not a RAPI client")
        return self._wrap(obj._bind(self._flow))


def _call(build: Callable[P, RapiCall[T]]) -> _Method[P, T]:
    def flow(*args: P.args, **kwargs: P.kwargs) -> Flow[T]:
        result: T = yield build(*args, **kwargs)
        return result

    return _Method(flow, build)


def _flow(build: Callable[P, Flow[T]]) -> _Method[P, T]:
    return _Method(build, build)


def raw_call(
    method: str, path: str, *, query: Mapping[str, str] | None = None, body: Any = None
) -> RapiCall[Any]:
    """Any RAPI request, answering the decoded JSON (for tests and resources without a method).

    Only GET and HEAD count as reads (retried); any other method is taken to submit a job.
    """
    request = RapiRequest(
        method.upper(),
        path,
        f"{method.upper()} {path}",
        query=tuple((query or {}).items()),
        body=body,
        creates_job=method.upper() not in ("GET", "HEAD"),
    )
    return RapiCall(request, lambda value: value)


class RapiMethods:
    """Every RAPI operation; see the builder of the same name in ``gwm.rapi.builders``.

    ``raw`` is :func:`raw_call`.
    """

    # cluster
    get_version = _call(cluster.get_version)
    get_features = _call(cluster.get_features)
    get_cluster_info = _call(cluster.get_cluster_info)
    list_os = _call(cluster.list_os)
    list_os_bulk = _call(cluster.list_os_bulk)
    modify_cluster = _call(cluster.modify_cluster)
    redistribute_config = _call(cluster.redistribute_config)
    get_cluster_tags = _call(cluster.get_cluster_tags)
    add_cluster_tags = _call(cluster.add_cluster_tags)
    delete_cluster_tags = _call(cluster.delete_cluster_tags)
    # instances
    list_instances = _call(instances.list_instances)
    list_instances_bulk = _call(instances.list_instances_bulk)
    get_instance = _call(instances.get_instance)
    create_instance = _call(instances.create_instance)
    delete_instance = _call(instances.delete_instance)
    request_instance_info = _call(instances.request_instance_info)
    startup_instance = _call(instances.startup_instance)
    shutdown_instance = _call(instances.shutdown_instance)
    reboot_instance = _call(instances.reboot_instance)
    reinstall_instance = _call(instances.reinstall_instance)
    migrate_instance = _call(instances.migrate_instance)
    failover_instance = _call(instances.failover_instance)
    rename_instance = _call(instances.rename_instance)
    modify_instance = _call(instances.modify_instance)
    get_instance_console = _call(instances.get_instance_console)
    # instance disks
    activate_instance_disks = _call(instance_disks.activate_instance_disks)
    deactivate_instance_disks = _call(instance_disks.deactivate_instance_disks)
    grow_instance_disk = _call(instance_disks.grow_instance_disk)
    replace_instance_disks = _call(instance_disks.replace_instance_disks)
    recreate_instance_disks = _call(instance_disks.recreate_instance_disks)
    # instance tags
    get_instance_tags = _call(instances.get_instance_tags)
    add_instance_tags = _call(instances.add_instance_tags)
    delete_instance_tags = _call(instances.delete_instance_tags)
    # nodes
    list_nodes = _call(nodes.list_nodes)
    list_nodes_bulk = _call(nodes.list_nodes_bulk)
    get_node = _call(nodes.get_node)
    get_node_role = _call(nodes.get_node_role)
    set_node_role = _call(nodes.set_node_role)
    evacuate_node = _call(nodes.evacuate_node)
    migrate_node = _call(nodes.migrate_node)
    modify_node = _call(nodes.modify_node)
    powercycle_node = _call(nodes.powercycle_node)
    get_node_tags = _call(nodes.get_node_tags)
    add_node_tags = _call(nodes.add_node_tags)
    delete_node_tags = _call(nodes.delete_node_tags)
    # node groups
    list_groups = _call(groups.list_groups)
    list_groups_bulk = _call(groups.list_groups_bulk)
    get_group = _call(groups.get_group)
    create_group = _call(groups.create_group)
    modify_group = _call(groups.modify_group)
    rename_group = _call(groups.rename_group)
    delete_group = _call(groups.delete_group)
    assign_group_nodes = _call(groups.assign_group_nodes)
    get_group_tags = _call(groups.get_group_tags)
    add_group_tags = _call(groups.add_group_tags)
    delete_group_tags = _call(groups.delete_group_tags)
    # networks
    list_networks = _call(networks.list_networks)
    list_networks_bulk = _call(networks.list_networks_bulk)
    get_network = _call(networks.get_network)
    create_network = _call(networks.create_network)
    modify_network = _call(networks.modify_network)
    rename_network = _call(networks.rename_network)
    delete_network = _call(networks.delete_network)
    connect_network = _call(networks.connect_network)
    disconnect_network = _call(networks.disconnect_network)
    get_network_tags = _call(networks.get_network_tags)
    add_network_tags = _call(networks.add_network_tags)
    delete_network_tags = _call(networks.delete_network_tags)
    # jobs
    list_jobs = _call(jobs.list_jobs)
    list_jobs_bulk = _call(jobs.list_jobs_bulk)
    get_job = _call(jobs.get_job)
    cancel_job = _call(jobs.cancel_job)
    wait_for_job_change = _call(jobs.wait_for_job_change)
    wait_for_job = _flow(jobs.wait_for_job)
    # generic query
    query = _call(queries.query)
    query_rows = _call(queries.query_rows)
    query_fields = _call(queries.query_fields)
    # anything else
    raw = _call(raw_call)


TransportT = TypeVar("TransportT", httpx.BaseTransport, httpx.AsyncBaseTransport)
HTTPClientT = TypeVar("HTTPClientT", httpx.Client, httpx.AsyncClient)


class ClientBase(RapiMethods, Generic[TransportT, HTTPClientT]):
    """The constructor both clients share; each opens its own kind of httpx client.

    A subclass says how it opens that client (``_open``), which lock guards it
    (``_new_lock``) and how a method runs its flow (``_bind``).
    """

    def __init__(
        self,
        base_url: str,
        *,
        username: str | None = None,
        password: str | None = None,
        timeout: httpx.Timeout | float | None = DEFAULT_TIMEOUT,
        transport: TransportT | None = None,
        verify: bool = True,
        ca_file: str | os.PathLike[str] | None = None,
        fingerprint: str | None = None,
        check_hostname: bool = True,
        retries: int = 2,
        retry_backoff: float = 0.5,
        retry_backoff_max: float = 8.0,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.config = ClientConfig(
            base_url,
            username=username,
            password=password,
            timeout=timeout,
            transport_given=transport is not None,
            verify=verify,
            ca_file=ca_file,
            fingerprint=fingerprint,
            check_hostname=check_hostname,
            retries=retries,
            retry_backoff=retry_backoff,
            retry_backoff_max=retry_backoff_max,
            headers=headers,
        )
        self._transport: TransportT | None = transport
        self._lock = self._new_lock()
        self._http: HTTPClientT | None = None
        if not self.config.tls.pinned:
            # A pinned client opens it only once the certificate has been checked.
            self._http = self._open(None)

    def _new_lock(self) -> threading.Lock | asyncio.Lock:
        """The lock under which a pinned client probes and opens its httpx client."""
        raise NotImplementedError

    def _open(self, context: ssl.SSLContext | None) -> HTTPClientT:
        """The httpx client, trusting ``context`` if given (pinning)."""
        raise NotImplementedError

    def _bind(self, flow: Callable[P, Flow[T]]) -> Callable[P, Any]:
        """A method of this client that runs ``flow`` with its arguments (or awaits it)."""
        raise NotImplementedError

    #: Seconds spent waiting for Ganeti's answers (send to last byte), not
    #: counting decoding: the client's measure of what its calls cost the cluster.
    http_seconds: float = 0.0

    @property
    def base_url(self) -> str:
        return self.config.base_url

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.config!r}>"

    def _probe(self) -> bytes:
        endpoint = self.config.endpoint
        return fetch_peer_certificate(
            endpoint.host, endpoint.port, timeout=self.config.timeout.connect
        )
