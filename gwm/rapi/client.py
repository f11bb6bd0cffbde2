"""``RapiClient`` and ``AsyncRapiClient``: the same methods, sync and async.

Both inherit every RAPI method and their constructor from
:class:`~gwm.rapi.base.ClientBase`, where each method is bound once to its
builder; the two classes only differ in how they send, sleep and fetch the
certificate to pin.

    with RapiClient("https://cluster:5080", username="gwm", password="...",
                    ca_file="rapi.pem") as rapi:
        job_id = rapi.shutdown_instance("web1", reason="gwm:op:42")
        job = rapi.wait_for_job(job_id, timeout=600)
        if job.error:
            print(job.error.message)
"""

from __future__ import annotations

import asyncio
import ssl
import threading
import time
from collections.abc import Callable, Coroutine
from types import TracebackType
from typing import Any, ParamSpec, Self, TypeVar

import httpx

from gwm.rapi import observe
from gwm.rapi.base import ClientBase
from gwm.rapi.calls import Flow, RapiCall, Sleep
from gwm.rapi.errors import RapiError, RapiTLSError

P = ParamSpec("P")
T = TypeVar("T")


class RapiClient(ClientBase[httpx.BaseTransport, httpx.Client]):
    """Synchronous Ganeti RAPI client (thread-safe; one connection pool).

    ``base_url``: ``https://host:5080`` (``host`` alone means that).
    ``username``/``password``: HTTP Basic credentials of a RAPI user.
    ``timeout``: an ``httpx.Timeout`` or seconds; default connect 5 s, read 30 s.
    ``transport``: an httpx transport to use instead of the network.
    TLS, in order of preference: ``ca_file=`` (PEM to verify against, with
    ``check_hostname``), ``fingerprint=`` (SHA-256 of the certificate,
    checked before any credentials are sent), or ``verify=False``; the
    default verifies against the system CAs, which a self-signed Ganeti
    certificate fails with a :class:`RapiTLSError` saying so.
    ``retries``: how often an idempotent read is sent again after a
    connection error, a timeout or a 502/503/504; writes never are.
    """

    _lock: threading.Lock

    def _new_lock(self) -> threading.Lock:
        return threading.Lock()

    def _open(self, context: ssl.SSLContext | None) -> httpx.Client:
        return httpx.Client(transport=self._transport, **self.config.client_options(context))

    def _bind(self, flow: Callable[P, Flow[T]]) -> Callable[P, T]:
        def run(*args: P.args, **kwargs: P.kwargs) -> T:
            return self.run(flow(*args, **kwargs))

        return run

    def _client(self) -> httpx.Client:
        if self._http is not None:
            return self._http
        with self._lock:
            if self._http is None:
                # Pinning: look at the certificate before the first request
                # (and its credentials) goes out.
                try:
                    der = self._probe()
                except (OSError, ssl.SSLError) as exc:
                    raise self.config.probe_failed(exc) from exc
                self._http = self._open(self.config.pin(der))
            return self._http

    def send(self, call: RapiCall[T]) -> T:
        """Send one call, retrying idempotent reads; its parsed result."""
        http = self._client()
        request = self.config.build(http, call)
        attempt = 0
        while True:
            sent = time.perf_counter()
            try:
                try:
                    response = http.send(request)
                    self.http_seconds += time.perf_counter() - sent
                except httpx.HTTPError as exc:
                    raise self._explain(self.config.failed(exc, call)) from exc
                result = self.config.complete(call, response)
                observe.sent(call.request, time.perf_counter() - sent, None)
                return result
            except RapiError as error:
                observe.sent(call.request, time.perf_counter() - sent, error)
                delay = self.config.retry_delay(call, attempt, error)
                if delay is None:
                    raise
            attempt += 1
            time.sleep(delay)

    def _explain(self, error: RapiError) -> RapiError:
        if not (isinstance(error, RapiTLSError) and self.config.tls.pinned):
            return error
        try:
            return self.config.mismatch_after(error, self._probe())
        except (OSError, ssl.SSLError):
            return error

    def run(self, flow: Flow[T]) -> T:
        """Carry out a multi-step method (see ``gwm.rapi.calls.Flow``)."""
        try:
            step = next(flow)
            while True:
                reply: Any = None
                if isinstance(step, Sleep):
                    time.sleep(step.seconds)
                else:
                    reply = self.send(step)
                step = flow.send(reply)
        except StopIteration as done:
            result: T = done.value
            return result
        finally:
            flow.close()

    def close(self) -> None:
        if self._http is not None:
            self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class AsyncRapiClient(ClientBase[httpx.AsyncBaseTransport, httpx.AsyncClient]):
    """Asynchronous twin of :class:`RapiClient`: the same methods, awaited.

    ``transport`` is an ``httpx.AsyncBaseTransport``; every other argument is
    as for :class:`RapiClient`.
    """

    _lock: asyncio.Lock

    def _new_lock(self) -> asyncio.Lock:
        return asyncio.Lock()

    def _open(self, context: ssl.SSLContext | None) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=self._transport, **self.config.client_options(context))

    def _bind(self, flow: Callable[P, Flow[T]]) -> Callable[P, Coroutine[Any, Any, T]]:
        async def run_async(*args: P.args, **kwargs: P.kwargs) -> T:
            return await self.run(flow(*args, **kwargs))

        return run_async

    async def _client(self) -> httpx.AsyncClient:
        if self._http is not None:
            return self._http
        async with self._lock:
            if self._http is None:
                try:
                    der = await asyncio.to_thread(self._probe)
                except (OSError, ssl.SSLError) as exc:
                    raise self.config.probe_failed(exc) from exc
                self._http = self._open(self.config.pin(der))
            return self._http

    async def send(self, call: RapiCall[T]) -> T:
        """Send one call, retrying idempotent reads; its parsed result."""
        http = await self._client()
        request = self.config.build(http, call)
        attempt = 0
        while True:
            sent = time.perf_counter()
            try:
                try:
                    response = await http.send(request)
                    self.http_seconds += time.perf_counter() - sent
                except httpx.HTTPError as exc:
                    raise (await self._explain(self.config.failed(exc, call))) from exc
                result = self.config.complete(call, response)
                observe.sent(call.request, time.perf_counter() - sent, None)
                return result
            except RapiError as error:
                observe.sent(call.request, time.perf_counter() - sent, error)
                delay = self.config.retry_delay(call, attempt, error)
                if delay is None:
                    raise
            attempt += 1
            await asyncio.sleep(delay)

    async def _explain(self, error: RapiError) -> RapiError:
        if not (isinstance(error, RapiTLSError) and self.config.tls.pinned):
            return error
        try:
            return self.config.mismatch_after(error, await asyncio.to_thread(self._probe))
        except (OSError, ssl.SSLError):
            return error

    async def run(self, flow: Flow[T]) -> T:
        """Carry out a multi-step method (see ``gwm.rapi.calls.Flow``)."""
        try:
            step = next(flow)
            while True:
                reply: Any = None
                if isinstance(step, Sleep):
                    await asyncio.sleep(step.seconds)
                else:
                    reply = await self.send(step)
                step = flow.send(reply)
        except StopIteration as done:
            result: T = done.value
            return result
        finally:
            flow.close()

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
