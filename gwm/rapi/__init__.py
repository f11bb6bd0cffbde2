"""Ganeti RAPI v2 client: ``RapiClient`` (sync) and ``AsyncRapiClient`` (async).

No Django here, and nothing from the rest of gwm: gwm.ganeti and the
operation workers use it, and so can scripts. See README.md beside this file
for the method list, TLS trust and the exception tree.
"""

from gwm.rapi.base import RapiMethods
from gwm.rapi.calls import RapiCall, RapiRequest
from gwm.rapi.client import AsyncRapiClient, RapiClient
from gwm.rapi.errors import (
    RapiBadRequest,
    RapiConnectionError,
    RapiError,
    RapiForbidden,
    RapiGatewayTimeout,
    RapiHTTPError,
    RapiJobNotFound,
    RapiJobWaitTimeout,
    RapiMasterUnreachable,
    RapiMethodNotAllowed,
    RapiNotFound,
    RapiNotImplemented,
    RapiProtocolError,
    RapiServerError,
    RapiTimeout,
    RapiTLSError,
    RapiUnauthorized,
    RapiUnavailable,
    RapiUnsupportedMediaType,
)
from gwm.rapi.schemas import (
    RapiCancelJobResult,
    RapiClusterInfo,
    RapiGroup,
    RapiInstance,
    RapiInstanceConsole,
    RapiJob,
    RapiJobFailure,
    RapiJobLogEntry,
    RapiJobWaitResult,
    RapiNetwork,
    RapiNode,
    RapiOperatingSystem,
    RapiQueryCell,
    RapiQueryField,
    RapiQueryResult,
)
from gwm.rapi.tls import format_fingerprint, normalize_fingerprint

__all__ = [
    "AsyncRapiClient",
    "RapiBadRequest",
    "RapiCall",
    "RapiCancelJobResult",
    "RapiClient",
    "RapiClusterInfo",
    "RapiConnectionError",
    "RapiError",
    "RapiForbidden",
    "RapiGatewayTimeout",
    "RapiGroup",
    "RapiHTTPError",
    "RapiInstance",
    "RapiInstanceConsole",
    "RapiJob",
    "RapiJobFailure",
    "RapiJobLogEntry",
    "RapiJobNotFound",
    "RapiJobWaitResult",
    "RapiJobWaitTimeout",
    "RapiMasterUnreachable",
    "RapiMethodNotAllowed",
    "RapiMethods",
    "RapiNetwork",
    "RapiNode",
    "RapiNotFound",
    "RapiNotImplemented",
    "RapiOperatingSystem",
    "RapiProtocolError",
    "RapiQueryCell",
    "RapiQueryField",
    "RapiQueryResult",
    "RapiRequest",
    "RapiServerError",
    "RapiTLSError",
    "RapiTimeout",
    "RapiUnauthorized",
    "RapiUnavailable",
    "RapiUnsupportedMediaType",
    "format_fingerprint",
    "normalize_fingerprint",
]
