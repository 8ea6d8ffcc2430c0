"""Capabilities: data permissions that are not a schema coordinate, granted by policy lines like coordinates.

`p, chief_physician, capability:consultation.manage, execute`. A field's visibility is only about the schema;
what a role may reach or do with data beyond that is a capability, named here (with what it means), checked
at start-up like a coordinate (a line naming an unknown capability refuses start-up) and listed by the
permission catalogue. Code asks `access.can(Capability.X)`; no role key is tested anywhere else.
"""

from __future__ import annotations

from enum import StrEnum

PREFIX = "capability:"
ACTION = "execute"


class Capability(StrEnum):
    CONSULTATION_MANAGE = "consultation.manage"
    RECORDS_VOIDED = "records.voided"
    ROLES_ASSIGN_ANY = "roles.assign_any"
    METRICS_READ = "metrics.read"
    SCHEMA_INTROSPECT = "schema.introspect"
    LEARNING_ASSIGNEE = "learning.assignee"
    CONTENT_EDIT = "content.edit"
    COMMENTS_MODERATE = "comments.moderate"
    BREAK_GLASS_REVIEW = "break_glass.review"
    SCHEDULE_MANAGE = "schedule.manage"
    FHIR_EXPORT = "fhir.export"
    FHIR_EXPORT_ALL = "fhir.export_all"

    @property
    def coordinate(self) -> str:
        return PREFIX + self.value

    @property
    def inherited(self) -> bool:
        """Most capabilities pass down the role hierarchy like permissions. Receiving learning tasks does not:
        an administrator inherits what a physician may do, not a physician's duties."""
        return self is not Capability.LEARNING_ASSIGNEE


DESCRIPTIONS: dict[Capability, str] = {
    Capability.CONSULTATION_MANAGE: "Read and manage every conversation of the departments in your data scope, "
    "not only your own",
    Capability.RECORDS_VOIDED: "See records voided as entered in error (marked void) alongside the others",
    Capability.ROLES_ASSIGN_ANY: "Assign any role, whatever its permissions and data scope (otherwise only roles "
    "no wider than your own)",
    Capability.METRICS_READ: "Read the Prometheus metrics at /metrics",
    Capability.SCHEMA_INTROSPECT: "Introspect the schema where introspection is switched off for others",
    Capability.LEARNING_ASSIGNEE: "Receive the learning tasks of your department",
    Capability.CONTENT_EDIT: "Edit health-education content of the departments in your data scope (and your own)",
    Capability.COMMENTS_MODERATE: "Review comments on content of the departments in your data scope",
    Capability.BREAK_GLASS_REVIEW: "Review emergency (break-the-glass) access to patients or by staff of the "
    "departments in your data scope",
    Capability.SCHEDULE_MANAGE: "Import, export, close, reopen and cancel the doctor schedules of the departments in "
    "your data scope (and your own)",
    Capability.FHIR_EXPORT: "Export a department's patients in your data scope as FHIR bulk data (Group/$export): "
    "your own department, or those your data scope reaches",
    Capability.FHIR_EXPORT_ALL: "Export every patient in your data scope at once as FHIR bulk data (Patient/$export)",
}

# The domain each capability belongs to in the permission catalogue (schema/engine/catalog.py): the schema
# module whose data it concerns.
DOMAINS: dict[Capability, str] = {
    Capability.CONSULTATION_MANAGE: "consultation",
    Capability.RECORDS_VOIDED: "integrity",
    Capability.ROLES_ASSIGN_ANY: "role",
    Capability.METRICS_READ: "operations",
    Capability.SCHEMA_INTROSPECT: "platform",
    Capability.LEARNING_ASSIGNEE: "learning",
    Capability.CONTENT_EDIT: "education",
    Capability.COMMENTS_MODERATE: "moderation",
    Capability.BREAK_GLASS_REVIEW: "integrity",
    Capability.SCHEDULE_MANAGE: "appointment",
    Capability.FHIR_EXPORT: "export",
    Capability.FHIR_EXPORT_ALL: "export",
}

COORDINATES: frozenset[str] = frozenset(capability.coordinate for capability in Capability)


def is_capability(coordinate: str) -> bool:
    return coordinate.startswith(PREFIX)
