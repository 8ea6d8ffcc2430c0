"""HL7 FHIR R4: a patient's record as a Bundle, and bulk data exports of many patients as NDJSON.

Each domain's records become resources through one registry (resolvers/fhir/registry.py); the modules imported
here register theirs. Every value follows the same field decision as the GraphQL field it comes from
(policies/decision.py): whole, masked, or left out where the caller's schema does not show that field. Records come
through the caller's scoped repository: voided ones only to those who see them (policies/voided.py), marked
entered-in-error. Resources validate against the R4B models of `fhir.resources`, which match R4 for these
resource types.
"""

from __future__ import annotations

from resolvers.fhir import appointment, clinical, consultation, export, jobs, patient, provenance
from resolvers.fhir.build import patient_bundle, resources_of
from resolvers.fhir.registry import resource_types

__all__ = [
    "appointment",
    "clinical",
    "consultation",
    "export",
    "jobs",
    "patient",
    "patient_bundle",
    "provenance",
    "resource_types",
    "resources_of",
]
