"""Operations over the API: scheduled jobs, monitoring, online sessions (admins by default; see the policy)."""

from __future__ import annotations

import strawberry

from schema.operations.jobs import JobsMutation, JobsQuery
from schema.operations.monitoring import MonitoringMutation, MonitoringQuery
from schema.operations.sessions import SessionsMutation, SessionsQuery


@strawberry.type
class OperationsQuery(JobsQuery, MonitoringQuery, SessionsQuery):
    pass


@strawberry.type
class OperationsMutation(JobsMutation, MonitoringMutation, SessionsMutation):
    pass


__all__ = ["OperationsMutation", "OperationsQuery"]
