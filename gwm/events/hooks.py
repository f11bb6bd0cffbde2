"""Per-resource hooks, the tracker's ``track_hook``: "call me when this changes, or ends".

A hook is a :class:`~gwm.events.models.Webhook` of kind ``hook`` whose
``resources`` hold one resource key (``instance:prod/web1``, ``node:prod/n1``,
``job:12``): the fan-out matches, signs, retries and logs it exactly like a
webhook (gwm.events.webhooks). A caller has at most one hook per resource: a
PUT again changes its URL and types and keeps its secret, its cursor and its
delivery log. A job's hook is ``once``: the fan-out removes it after the job's
final event was delivered, so a hook on a finished job would wait forever (409).

Models only (rank 2). Who may set a hook is the handlers' question; where it
may point (``check_target``) and its secret (``new_secret``) come from
gwm.events.webhooks, which ranks above ``operation_submit``, the caller of
:func:`job_hook_for_callback` inside the job's own transaction, so the
handlers decide both and hand them in.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import Min, QuerySet

from gwm.errors import Conflict, NotFound, ValidationFailed
from gwm.events.models import Change, Webhook, WebhookKind
from gwm.events.services import last_seq
from gwm.events.types import JOB_ENDS, type_matches, types_valid
from gwm.kit.urls import job_url
from gwm.operations.models import FINAL_STATUSES, Job


class JobFinished(Conflict):
    code = "job_finished"
    title = "Job has finished"


@dataclass(frozen=True)
class Callback:
    """Where a hook calls, and the secret it signs with should it be new."""

    url: str
    secret: str


def job_key(job_id: int) -> str:
    """A job's resource key (gwm.events.render.resource_key("job", "", id))."""
    return f"job:{job_id}"


def _kind_of(key: str) -> str:
    return key.partition(":")[0]


def _types_of(key: str, types: Sequence[str] | None) -> list[str]:
    """The event types a hook on ``key`` asks for: its own kind's, all of them by default.

    A type of another kind would never match (the hook sees one resource), so it
    is refused rather than kept as a hook that stays silent.
    """
    kind = _kind_of(key)
    wanted = list(dict.fromkeys(types or ()))
    unknown = types_valid(wanted)
    if unknown:
        raise ValidationFailed(f"unknown event type {unknown[0]!r}", code="unknown_event_type")
    foreign = [item for item in wanted if item.split(".", 1)[0] != kind]
    if foreign:
        raise ValidationFailed(
            f"a hook on a {kind} receives {kind} events only, not {foreign[0]!r}",
            code="event_type_mismatch",
        )
    if kind == "job" and wanted and not all(type_matches(wanted, end) for end in JOB_ENDS.values()):
        # A job's hook goes once the job's end was delivered: without it, it would stay.
        raise ValidationFailed(
            f"a hook on a job receives its end: add {', '.join(sorted(JOB_ENDS.values()))}",
            code="job_end_required",
        )
    return wanted or [f"{kind}.*"]


def _hooks(owner: User, key: str) -> QuerySet[Webhook]:
    return Webhook.objects.filter(owner=owner, kind=WebhookKind.HOOK, resources=[key])


def hook_find(*, owner: User, key: str) -> Webhook | None:
    """``owner``'s hook on the resource ``key``, or None."""
    return _hooks(owner, key).first()


def hook_get(*, owner: User, key: str) -> Webhook:
    hook = hook_find(owner=owner, key=key)
    if hook is None:
        raise NotFound(f"you have no hook on {key}")
    return hook


def hook_put(
    *,
    owner: User,
    key: str,
    url: str,
    types: Sequence[str] | None,
    secret: str,
    job: Job | None = None,
) -> tuple[Webhook, bool]:
    """Create or replace ``owner``'s hook on ``key``; returns it and whether it is new.

    ``secret`` signs a new hook (a replaced one keeps its own). For a ``job`` the
    hook is ``once`` and may not be new once the job has ended (409 ``job_finished``).
    """
    wanted = _types_of(key, types)
    with transaction.atomic():
        # Read before the job's status: a job that ends after this read ends with a
        # change above the cursor, which the new hook then delivers (and is removed).
        cursor = last_seq()
        # One hook per (owner, resource) without a unique index on a JSON list: an
        # owner's hook writes wait for each other (NO KEY: inserts citing the user pass).
        list(User.objects.select_for_update(no_key=True).filter(pk=owner.pk))
        hook = _hooks(owner, key).select_for_update().first()
        if hook is not None:
            hook.url, hook.types = url, wanted
            hook.save(update_fields=["url", "types", "updated_at"])
            return hook, False
        if job is not None:
            status = Job.objects.filter(pk=job.pk).values_list("status", flat=True).first()
            if status is None or status in FINAL_STATUSES:
                raise JobFinished(
                    f"job {job.pk} has ended ({status}): there is nothing left to call about",
                    job=job_url(job.pk),
                )
        return _create(owner, key, url, wanted, secret, cursor, once=job is not None), True


def hook_delete(*, owner: User, key: str) -> None:
    """Remove ``owner``'s hook on ``key`` and its delivery log (404 when there is none)."""
    with transaction.atomic():
        deleted, _ = _hooks(owner, key).delete()
    if not deleted:
        raise NotFound(f"you have no hook on {key}")


def job_hook_for_callback(*, job: Job, owner: User, callback: Callback) -> Webhook:
    """The hook a write's ``callback_url`` asks for, written in the job's own transaction,
    after the job's first change rows.

    Its cursor is the seq just before the job's first change, so the fan-out
    delivers ``job.created`` too and everything after it, up to the job's end.
    """
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("a job's callback hook is written in the transaction of the job")
    key = job_key(job.pk)
    first = Change.objects.filter(
        cluster=job.cluster_id, resource="job", name=str(job.pk)
    ).aggregate(first=Min("seq"))["first"]
    cursor = first - 1 if first is not None else last_seq()
    hook = _hooks(owner, key).first()
    if hook is not None:  # not for a new job; kept for a caller who calls this twice
        hook.url = callback.url
        hook.save(update_fields=["url", "updated_at"])
        return hook
    return _create(owner, key, callback.url, ["job.*"], callback.secret, cursor, once=True)


def _create(
    owner: User, key: str, url: str, types: list[str], secret: str, cursor: int, *, once: bool
) -> Webhook:
    return Webhook.objects.create(
        owner=owner,
        kind=WebhookKind.HOOK,
        url=url,
        description=f"hook on {key}",
        types=types,
        resources=[key],
        secrets=[{"secret": secret, "expires_at": None}],
        cursor=cursor,
        once=once,
    )
