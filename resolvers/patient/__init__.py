"""Patients: scoped reads (each one recorded), registration, versioned updates, binding codes."""

from resolvers.patient.own import (
    ACCESS_ACTIONS,
    BindingCode,
    IssuedCode,
    access_log,
    bind_record,
    binding_codes,
    issue_binding_code,
    my_patient_id,
    my_record,
    names_of,
    revoke_binding_codes,
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
    "IssuedCode",
    "PatientFilter",
    "PatientInput",
    "access_log",
    "bind_record",
    "binding_codes",
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
    "revoke_binding_codes",
    "update_patient",
]
