# ruff: noqa: E501 - one line per menu entry reads as a table
"""The platform's standard menu: a directory per module, its pages and a few buttons, each naming the schema
coordinates (and capabilities) its page uses, so every user's myMenus follows their role's schema.

Seeded by the bootstrap (policies/bootstrap.py, run by `server.py migrate`) in production and demo alike, entry by
entry, matched by key: an entry is laid down once, and its key recorded (`seeded_menu_entry`), so what an admin
renames, moves or deletes afterwards stays so; an entry added here in a later version is added on the next run.

(key, kind, 中文, English, path, icon, needs, children). Top-level entries are ordered in tens, a module's pages
below it in tens too, so an entry can be put between two without renumbering.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from models.menu import Menu, MenuKind, SeededMenuEntry

D, P, B = MenuKind.DIRECTORY, MenuKind.PAGE, MenuKind.BUTTON

Entry = tuple[str, MenuKind, str, str, str, str, list[str], list[Any]]

STANDARD_MENU: list[tuple[int, Entry]] = [
    (10, ("clinical", D, "临床管理", "Clinical", "", "stethoscope", [], [
        ("clinical.patients", P, "患者档案", "Patients", "/clinical/patients", "user", ["Query.patients"], [
            ("clinical.patients.register", B, "登记患者", "Register patient", "", "", ["Mutation.registerPatient"], []),
            ("clinical.patients.visit", B, "记录就诊", "Record visit", "", "", ["Mutation.recordVisit"], []),
        ]),
        ("clinical.follow-ups", P, "随访管理", "Follow-ups", "/clinical/follow-ups", "calendar", ["Query.overdueFollowUps"], [
            ("clinical.follow-ups.outcome", B, "记录随访结果", "Record outcome", "", "", ["Mutation.recordFollowUpOutcome"], []),
        ]),
        ("clinical.protocols", P, "随访方案", "Follow-up protocols", "/clinical/protocols", "list", ["Query.followUpProtocols"], []),
        ("clinical.outcomes", P, "疗效统计", "Outcomes", "/clinical/outcomes", "chart", ["Query.outcomeSummary"], []),
        ("clinical.icd", P, "ICD-10 编码", "ICD-10 codes", "/clinical/icd", "book", ["Query.icd10Codes"], []),
    ])),
    (20, ("appointments", D, "预约挂号", "Appointments", "", "schedule", [], [
        ("appointments.list", P, "预约管理", "Appointments", "/appointments", "calendar", ["Query.appointments"], [
            ("appointments.list.book", B, "预约", "Book", "", "", ["Mutation.scheduleAppointment"], []),
        ]),
        ("appointments.schedules", P, "排班", "Doctor schedules", "/appointments/schedules", "table", ["Query.schedules"], [
            ("appointments.schedules.import", B, "导入排班", "Import schedules", "", "", ["Mutation.importSchedules"], []),
            ("appointments.schedules.export", B, "导出排班", "Export schedules", "", "", ["Query.exportSchedules"], []),
        ]),
    ])),
    (30, ("patients", D, "患者服务", "Patient services", "", "heart", [], [
        ("patients.binding", P, "绑定码", "Binding codes", "/patients/binding", "link", ["Mutation.issuePatientBindingCode"], [
            ("patients.binding.revoke", B, "作废绑定码", "Revoke codes", "", "", ["Mutation.revokePatientBindingCodes"], []),
        ]),
        ("patients.export", P, "健康档案导出", "Record export (FHIR)", "/patients/export", "download", ["Query.patientFhirBundle"], []),
        ("patients.fhir-bulk", P, "批量导出 (FHIR)", "Bulk export (FHIR)", "/patients/fhir-bulk", "download",
         ["Mutation.startFhirExport", "Query.myFhirExports"], []),
    ])),
    (40, ("consultations", D, "在线咨询", "Consultations", "", "message", [], [
        ("consultations.mine", P, "我的咨询", "My conversations", "/consultations", "chat", ["Query.myConversations"], []),
        ("consultations.review", P, "消息审核", "Message review", "/consultations/review", "eye",
         ["Query.consultationMessages", "capability:consultation.manage"], []),
    ])),
    (50, ("education", D, "健康宣教", "Health education", "", "read", [], [
        ("education.articles", P, "文章", "Articles", "/education/articles", "file", ["Query.editorialArticles"], []),
        ("education.videos", P, "视频", "Videos", "/education/videos", "video", ["Query.editorialVideos"], []),
    ])),
    (60, ("learning", D, "学习任务", "Learning", "", "school", [], [
        ("learning.tasks", P, "任务管理", "Learning tasks", "/learning/tasks", "task", ["Query.learningTasks"], []),
        ("learning.mine", P, "我的学习", "My learning", "/learning/mine", "user", ["Query.myLearningTasks"], []),
    ])),
    (70, ("moderation", D, "内容审核", "Moderation", "", "shield", [], [
        ("moderation.comments", P, "评论审核", "Comments", "/moderation/comments", "comment",
         ["Query.comments", "capability:comments.moderate"], []),
        ("moderation.keywords", P, "敏感词", "Keywords", "/moderation/keywords", "filter", ["Query.moderationKeywords"], []),
    ])),
    (80, ("integrity", D, "数据安全与审计", "Integrity and audit", "", "lock", [], [
        ("integrity.break-glass", P, "紧急访问", "Break-the-glass", "/integrity/break-glass", "alert", ["Query.breakGlassAccesses"], []),
        ("integrity.audit", P, "审计日志", "Audit log", "/integrity/audit", "audit", ["Query.auditEvents"], []),
        ("integrity.logins", P, "登录日志", "Login log", "/integrity/logins", "login", ["Query.loginLogs"], []),
    ])),
    (90, ("operations", D, "运维监控", "Operations", "", "monitor", [], [
        ("operations.jobs", P, "定时任务", "Scheduled jobs", "/operations/jobs", "clock", ["Query.jobs"], []),
        ("operations.server", P, "服务状态", "Server status", "/operations/server", "server", ["Query.serverStatus"], []),
        ("operations.stats", P, "服务统计", "Service figures", "/operations/stats", "chart", ["Query.serviceStats"], []),
        ("operations.caches", P, "缓存", "Caches", "/operations/caches", "database", ["Query.cacheStats"], []),
        ("operations.users", P, "用户统计", "User figures", "/operations/users", "team", ["Query.userStats"], []),
        ("operations.sessions", P, "在线用户", "Online sessions", "/operations/sessions", "wifi", ["Query.onlineSessions"], []),
    ])),
    (100, ("system", D, "系统管理", "Administration", "", "setting", [], [
        ("system.users", P, "用户管理", "Users", "/system/users", "user", ["Query.users"], [
            ("system.users.create", B, "新建用户", "Create user", "", "", ["Mutation.createUser"], []),
            ("system.users.roles", B, "分配角色", "Assign roles", "", "", ["Mutation.assignRoles"], []),
        ]),
        ("system.departments", P, "科室管理", "Departments", "/system/departments", "apartment",
         ["Query.departments", "Mutation.updateDepartment"], []),
        ("system.positions", P, "岗位管理", "Positions", "/system/positions", "idcard",
         ["Query.positions", "Mutation.updatePosition"], []),
        ("system.roles", P, "角色权限", "Roles and permissions", "/system/roles", "key",
         ["Query.roles", "Query.rolePermissions", "Query.permissionCatalog"], []),
        ("system.dictionaries", P, "数据字典", "Dictionaries", "/system/dictionaries", "book",
         ["Query.dictionaries", "Mutation.updateDictionaryEntry"], []),
        ("system.menus", P, "菜单管理", "Menus", "/system/menus", "menu", ["Query.menus"], []),
        ("system.operation-log", P, "操作日志", "Operation log", "/system/operation-log", "history", ["Query.operationLogs"], [
            ("system.operation-log.export", B, "导出 CSV", "Export CSV", "", "", ["Query.operationLogCsv"], []),
        ]),
    ])),
]  # fmt: skip


async def seed_standard_menu(session: AsyncSession, tree: list[tuple[int, Entry]] | None = None) -> int:
    """Lay down every standard entry never seeded before; how many entries were added.

    An entry whose key is already in the menu (laid down by hand or before the marker existed) is only marked. A new
    entry goes below its parent as it is now (wherever an admin moved it); one whose parent an admin deleted is
    marked and left out, like the rest of what was deleted.
    """
    seeded = set((await session.execute(select(SeededMenuEntry.key))).scalars().all())
    ids: dict[str, int] = {key: menu_id for key, menu_id in (await session.execute(select(Menu.key, Menu.id))).all()}
    added = 0

    async def visit(entry: Entry, parent_key: str | None, order: int) -> None:
        nonlocal added
        key, kind, zh, en, path, icon, needs, children = entry
        if key not in seeded:
            seeded.add(key)
            session.add(SeededMenuEntry(key=key))
            parent_id = ids.get(parent_key) if parent_key is not None else None
            if key not in ids and (parent_key is None or parent_id is not None):
                menu = Menu(
                    key=key,
                    kind=kind.value,
                    title_zh=zh,
                    title_en=en,
                    path=path,
                    icon=icon,
                    needs=list(needs),
                    parent_id=parent_id,
                    sort_order=order,
                )
                session.add(menu)
                await session.flush()
                assert menu.id is not None
                ids[key] = menu.id
                added += 1
        for index, child in enumerate(children):
            await visit(child, key, (index + 1) * 10)

    for order, entry in tree if tree is not None else STANDARD_MENU:
        await visit(entry, None, order)
    await session.flush()
    return added
