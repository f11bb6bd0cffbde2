"""What each RAPI failure means to gwm, in each place gwm meets one.

The RAPI client raises one documented exception tree (gwm.rapi.errors). gwm
meets those exceptions in four places, each with its own outcome:

* a sync round: :class:`RoundFailure`, ``reachable`` False (no answer, or the
  master daemon away) makes the cluster UNREACHABLE, True (an answer gwm
  rejects) ERROR;
* a registration's RAPI check: a (code, detail) pair for the 422 problem;
* a job's submission: a transient failure is retried, a refusal ends the job
  with an error object;
* an answer needed now (dry run, console): an HTTP problem (502, 503, 504).
"""

from __future__ import annotations

from typing import Any

from gwm.errors import AppError, BadGateway, GatewayTimeout, ServiceUnavailable
from gwm.rapi.errors import (
    RapiConnectionError,
    RapiError,
    RapiForbidden,
    RapiHTTPError,
    RapiJobWaitTimeout,
    RapiNotFound,
    RapiProtocolError,
    RapiServerError,
    RapiTimeout,
    RapiTLSError,
    RapiUnauthorized,
)

#: How long a client is told to wait before asking again when Ganeti is away.
UNAVAILABLE_RETRY_AFTER = "10"


class RoundFailure(Exception):
    """Ganeti could not be read (a round, or a re-read). ``reachable``: did it answer at all."""

    def __init__(self, message: str, *, reachable: bool) -> None:
        super().__init__(message)
        self.reachable = reachable


def transient(exc: RapiError) -> bool:
    """No answer, or the master daemon away (502/503/504): worth trying again later."""
    return isinstance(exc, RapiConnectionError | RapiServerError)


def round_failure(exc: RapiError) -> RoundFailure:
    return RoundFailure(str(exc), reachable=not transient(exc))


def registration_problem(exc: RapiError) -> tuple[str, str]:
    """(code, detail) of a registration whose RAPI check failed."""
    if isinstance(exc, RapiTLSError):
        return "rapi_tls_failed", str(exc)
    if isinstance(exc, RapiUnauthorized):
        return "rapi_auth_failed", str(exc)
    if isinstance(exc, RapiForbidden):
        return "rapi_forbidden", str(exc)
    if isinstance(exc, RapiConnectionError):
        return "rapi_unreachable", str(exc)
    if isinstance(exc, RapiProtocolError | RapiNotFound):
        return "not_ganeti", f"this URL does not answer like Ganeti RAPI v2: {exc}"
    return "rapi_error", str(exc)


#: A refused submission's HTTP status → the code of the job's error.
REFUSAL_CODES = {
    400: "wrong_input",
    401: "rapi_auth_failed",
    403: "rapi_forbidden",
    404: "unknown_entity",
}


def job_refusal(exc: RapiError) -> dict[str, Any]:
    """The error of a job whose submission Ganeti refused (bad parameters, permissions)."""
    code = (
        REFUSAL_CODES.get(exc.status, "rejected") if isinstance(exc, RapiHTTPError) else "rejected"
    )
    return {"code": code, "message": str(exc), "ganeti": getattr(exc, "body", None)}


def job_error_from_ganeti(error: Any) -> dict[str, Any]:
    """A failed Ganeti job's error as gwm's job error: ``{code, message, ganeti}``."""
    if error is None:
        return {"code": "ganeti_error", "message": "the job failed", "ganeti": None}
    return {
        "code": error.code or "ganeti_error",
        "message": error.message,
        "ganeti": [error.error_class, error.message, error.code],
    }


def answer_problem(cluster: str, exc: RapiError | RoundFailure) -> AppError:
    """The HTTP problem of a request that needed Ganeti's answer now and did not get it."""
    if isinstance(exc, RapiTimeout):
        return GatewayTimeout(f"cluster {cluster} did not answer in time: {exc}")
    if isinstance(exc, RapiJobWaitTimeout):
        return GatewayTimeout(f"Ganeti's pre-checks did not finish in time: {exc}")
    if isinstance(exc, RoundFailure) or transient(exc):
        return ServiceUnavailable(
            f"cluster {cluster} cannot be reached now: {exc}",
            code="cluster_unreachable",
            headers={"Retry-After": UNAVAILABLE_RETRY_AFTER},
        )
    return BadGateway(str(exc))
