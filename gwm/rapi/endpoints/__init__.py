"""Builders for every RAPI resource gwm uses: one function per client method.

Each function takes the method's arguments and returns a
:class:`~gwm.rapi.requests.RapiCall` (or a :data:`~gwm.rapi.requests.Flow`);
:mod:`gwm.rapi.client` binds them to the sync and async clients.
"""
