"""The SDK: webhooks told of events (``notifications:`` in loopline.yaml)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from loopline.api._common import PathLike, provisioned

if TYPE_CHECKING:
    from loopline.notifications import Failure, Sent


def notifications_deliver(*, linger: float = 0.0, project: PathLike | None = None) -> Sent:
    """Send every webhook the events it has not had, in order, waiting out retries; then wait ``linger``
    seconds for more. Writes start a deliverer of their own, so this is for cron jobs and for sending what
    waits now; when another process is delivering, it returns at once with ``busy`` set."""
    from loopline import notifications

    instance = provisioned(project)
    return notifications.deliver(instance.settings, instance.db, linger=linger)


def notifications_failed(*, webhook: str | None = None, project: PathLike | None = None) -> list[Failure]:
    """The events webhooks did not take after every try (all webhooks, or ``webhook``), oldest first."""
    from loopline import notifications

    return notifications.failures(provisioned(project).db, webhook)


def notifications_retry(*, webhook: str | None = None, project: PathLike | None = None) -> list[Failure]:
    """Send each failed event once more, in order; those delivered are forgotten, those that fail again
    are returned."""
    from loopline import notifications

    instance = provisioned(project)
    return notifications.retry_failures(instance.settings, instance.db, webhook)
