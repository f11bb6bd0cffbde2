"""Request builders for every RAPI resource gwm uses: one function per client method.

Each public function takes the method's arguments and returns a
:class:`~gwm.rapi.calls.RapiCall` (or a :data:`~gwm.rapi.calls.Flow`);
:class:`gwm.rapi.base.RapiMethods` binds them to the sync and async clients.
"""
