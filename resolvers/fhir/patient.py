"""The Patient resource: every value as the caller's schema shows the field it comes from (whole, masked, or
left out)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from resolvers.fhir.common import IDENTIFIER_TYPE, RESIDENT_ID_SYSTEM, Built, Shared, View
from resolvers.fhir.registry import ResourceKind, register

if TYPE_CHECKING:
    from resolvers.data.context import Context

GENDERS = ("male", "female", "other", "unknown")
# identity document kinds other than the resident card: a system of our own, and HL7's identifier type
ID_TYPES = {"passport": "PPN", "hk_macao_permit": "PPN", "other": "NI"}


async def _load(ctx: Context, patient_ids: Sequence[int], shared: Shared) -> dict[int, list[Any]]:
    """The batch's patients were read (and their reads recorded) by the caller: the builder hands them over."""
    patients: dict[int, Any] = shared.extra["patients"]
    for row in patients.values():
        if row.attending_physician_id is not None:
            shared.want_staff.add(row.attending_physician_id)
        if row.department_id is not None:
            shared.want_departments.add(row.department_id)
    return {pid: [patients[pid]] for pid in patient_ids if pid in patients}


def _identifiers(patient: Any, view: View) -> list[dict[str, Any]]:
    shown = view.shown("Patient")
    found: list[dict[str, Any]] = []
    if shown.visible("id"):
        found.append({"use": "usual", "system": view.systems.patient, "value": str(patient.id)})
    id_number = shown("idNumber", patient.id_number)
    if id_number:
        id_type = shown("idType", patient.id_type) or "resident_id"
        if id_type == "resident_id":
            found.append({"use": "official", "system": RESIDENT_ID_SYSTEM, "value": id_number})
        else:
            code = ID_TYPES.get(id_type, "NI")
            found.append(
                {
                    "use": "official",
                    "type": {"coding": [{"system": IDENTIFIER_TYPE, "code": code}]},
                    "system": view.systems.identifier(id_type.replace("_", "-")),
                    "value": id_number,
                }
            )
    return found


def _patient(rows: list[Any], view: View) -> list[Built]:
    (patient,) = rows
    shown = view.shown("Patient")
    resource: dict[str, Any] = {"resourceType": "Patient", "id": str(patient.id)}
    meta = view.last_updated("Patient", patient, patient.created_at, patient.updated_at, patient.voided_at)
    if meta:
        resource["meta"] = meta
    identifiers = _identifiers(patient, view)
    if identifiers:
        resource["identifier"] = identifiers
    if shown.visible("voided"):
        resource["active"] = patient.voided_at is None
    name = shown("name", patient.name)
    if name:
        resource["name"] = [{"use": "official", "text": name}]
    phone = shown("phone", patient.phone)
    if phone:
        resource["telecom"] = [{"system": "phone", "value": phone, "use": "mobile"}]
    gender = shown("gender", patient.gender)
    if gender:
        resource["gender"] = gender if gender in GENDERS else "unknown"
    birth_date = shown("birthDate", patient.birth_date)
    if birth_date:
        resource["birthDate"] = birth_date.isoformat()
    address = shown("address", patient.address)
    if address:
        resource["address"] = [{"text": address}]
    contact = _emergency_contact(patient, view)
    if contact:
        resource["contact"] = [contact]
    if shown.visible("attendingPhysicianName"):
        physician = view.staff(patient.attending_physician_id, shown=True)
        if physician:
            resource["generalPractitioner"] = [physician]
    if shown.visible("departmentName") and patient.department_id is not None:
        organization: dict[str, Any] = {
            "type": "Organization",
            "identifier": {"system": view.systems.department, "value": str(patient.department_id)},
        }
        department = view.shared.department_names.get(patient.department_id)
        if department:
            organization["display"] = department
        resource["managingOrganization"] = organization
    merged_into = shown("mergedIntoId", patient.merged_into_id)
    if merged_into:
        # by identifier: the record it was merged into need not be among the resources exported with it
        other = {"type": "Patient", "identifier": {"system": view.systems.patient, "value": str(merged_into)}}
        resource["link"] = [{"other": other, "type": "replaced-by"}]
    return [Built(resource, ("Patient", int(patient.id)))]


def _emergency_contact(patient: Any, view: View) -> dict[str, Any] | None:
    shown = view.shown("Patient")
    name = shown("emergencyContactName", patient.emergency_contact_name)
    phone = shown("emergencyContactPhone", patient.emergency_contact_phone)
    if not name and not phone:
        return None
    contact: dict[str, Any] = {"relationship": [{"coding": [{"system": _CONTACT_ROLE, "code": "C"}]}]}
    if name:
        contact["name"] = {"text": name}
    if phone:
        contact["telecom"] = [{"system": "phone", "value": phone}]
    return contact


_CONTACT_ROLE = "http://terminology.hl7.org/CodeSystem/v2-0131"  # C: emergency contact

register(ResourceKind(name="patient", resource_types=("Patient",), load=_load, build=_patient, order=0))
