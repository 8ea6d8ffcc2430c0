"""Patients: scoped reads (each one recorded), registration, versioned updates, binding codes."""

from resolvers.patient.own import (
    ACCESS_ACTIONS,
    BindingCode,
    access_log,
    bind_record,
    issue_binding_code,
    my_patient_id,
    my_record,
    names_of,
)
from resolvers.patient.records import PatientFilter, get_patient, list_patients, overdue_clause
from resolvers.patient.writes import (
    PatientInput,
    duplicate_candidates,
    reassign_patient,
    register_patient,
    update_patient,
)

__all__ = [
    "ACCESS_ACTIONS",
    "BindingCode",
    "PatientFilter",
    "PatientInput",
    "access_log",
    "bind_record",
    "duplicate_candidates",
    "get_patient",
    "issue_binding_code",
    "list_patients",
    "my_patient_id",
    "my_record",
    "names_of",
    "overdue_clause",
    "reassign_patient",
    "register_patient",
    "update_patient",
]
