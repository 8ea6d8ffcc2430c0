"""The complete Query and Mutation, assembled from each domain; role schemas are cut from these."""

from __future__ import annotations

import strawberry

from schema.appointment import AppointmentMutation, AppointmentQuery
from schema.audit import AuditQuery
from schema.auth import AuthMutation, AuthQuery
from schema.clinical import ClinicalMutation, ClinicalQuery
from schema.consultation import ConsultationMutation, ConsultationQuery, ConsultationSubscription
from schema.descriptions import catalogue
from schema.dictionary import DictionaryMutation, DictionaryQuery
from schema.education import EducationMutation, EducationQuery
from schema.engine.descriptions import register
from schema.engine.oplog import note_mutation_calls
from schema.fhir_export import FhirExportMutation, FhirExportQuery
from schema.integrity import IntegrityMutation, IntegrityQuery
from schema.learning import LearningMutation, LearningQuery
from schema.menu import MenuMutation, MenuQuery
from schema.moderation import ModerationMutation, ModerationQuery
from schema.operations import OperationsMutation, OperationsQuery
from schema.organisation import OrganisationMutation, OrganisationQuery
from schema.patient import PatientMutation, PatientQuery
from schema.role import RoleMutation, RoleQuery
from schema.schedule import ScheduleMutation, ScheduleQuery
from schema.upload import UploadMutation
from schema.user import UserMutation, UserQuery


@strawberry.type
class Query(
    AuthQuery,
    UserQuery,
    OrganisationQuery,
    RoleQuery,
    AuditQuery,
    PatientQuery,
    FhirExportQuery,
    ClinicalQuery,
    IntegrityQuery,
    ConsultationQuery,
    EducationQuery,
    ModerationQuery,
    LearningQuery,
    OperationsQuery,
    DictionaryQuery,
    MenuQuery,
    AppointmentQuery,
    ScheduleQuery,
):
    pass


@strawberry.type
class Mutation(
    AuthMutation,
    UserMutation,
    OrganisationMutation,
    RoleMutation,
    PatientMutation,
    FhirExportMutation,
    ClinicalMutation,
    IntegrityMutation,
    UploadMutation,
    ConsultationMutation,
    EducationMutation,
    ModerationMutation,
    LearningMutation,
    OperationsMutation,
    DictionaryMutation,
    MenuMutation,
    AppointmentMutation,
    ScheduleMutation,
):
    pass


# Every mutation notes its call for the operation log (schema/engine/oplog.py).
note_mutation_calls(Mutation)


@strawberry.type
class Subscription(ConsultationSubscription):
    pass


register(catalogue())  # descriptions the code cannot carry beside the fields (schema/descriptions/)
