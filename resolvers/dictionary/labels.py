"""The default labels of every coded value the API exposes, Chinese and English: dictionary -> code -> (zh, en).

A dictionary is a GraphQL enum of the complete schema (schema/dictionary.py lists them from the schema itself);
tests/test_dictionary.py fails when an enum or one of its values has no default labels here, so a new enum
cannot reach the console unlabelled. Admins relabel and reorder through the API (the rows of models/dictionary.py);
these stay the defaults.
"""

from __future__ import annotations

DEFAULT_LABELS: dict[str, dict[str, tuple[str, str]]] = {
    "UserStatus": {"ACTIVE": ("启用", "Active"), "DISABLED": ("停用", "Disabled"), "PENDING": ("待激活", "Pending")},
    "DataScope": {
        "ALL": ("全部数据", "All data"),
        "DEPARTMENT_AND_BELOW": ("本科室及下级", "Department and below"),
        "DEPARTMENT": ("本科室", "Own department"),
        "SELF": ("仅本人", "Own only"),
    },
    "Gender": {
        "MALE": ("男", "Male"),
        "FEMALE": ("女", "Female"),
        "OTHER": ("其他", "Other"),
        "UNKNOWN": ("未知", "Unknown"),
    },
    "IdType": {
        "RESIDENT_ID": ("居民身份证", "Resident ID card"),
        "PASSPORT": ("护照", "Passport"),
        "HK_MACAO_PERMIT": ("港澳居民来往内地通行证", "Hong Kong / Macao permit"),
        "OTHER": ("其他证件", "Other document"),
    },
    "VisitType": {
        "OUTPATIENT": ("门诊", "Outpatient"),
        "INPATIENT": ("住院", "Inpatient"),
        "SURGERY": ("手术", "Surgery"),
        "TELECONSULTATION": ("远程会诊", "Teleconsultation"),
    },
    "ExamKind": {
        "COLONOSCOPY": ("结肠镜", "Colonoscopy"),
        "ANOSCOPY": ("肛门镜", "Anoscopy"),
        "PATHOLOGY": ("病理", "Pathology"),
        "IMAGING": ("影像", "Imaging"),
        "LABORATORY": ("检验", "Laboratory"),
    },
    "PlanType": {
        "MEDICATION": ("药物治疗", "Medication"),
        "SURGERY": ("手术治疗", "Surgery"),
        "TCM": ("中医治疗", "Traditional Chinese medicine"),
        "LIFESTYLE": ("生活方式干预", "Lifestyle"),
        "OTHER": ("其他", "Other"),
    },
    "PlanStatus": {
        "PLANNED": ("计划中", "Planned"),
        "ACTIVE": ("进行中", "Active"),
        "COMPLETED": ("已完成", "Completed"),
        "STOPPED": ("已停止", "Stopped"),
    },
    "FollowUpStatus": {
        "SCHEDULED": ("待随访", "Scheduled"),
        "COMPLETED": ("已完成", "Completed"),
        "MISSED": ("失访", "Missed"),
        "CANCELLED": ("已取消", "Cancelled"),
    },
    "FollowUpMethod": {"PHONE": ("电话", "Phone"), "CLINIC": ("门诊", "Clinic"), "WECHAT": ("微信", "WeChat")},
    "RecordType": {
        "PATIENT": ("患者", "Patient"),
        "VISIT": ("就诊记录", "Visit"),
        "DIAGNOSIS": ("诊断", "Diagnosis"),
        "EXAM_REPORT": ("检查报告", "Exam report"),
        "TREATMENT_PLAN": ("治疗方案", "Treatment plan"),
        "FOLLOW_UP": ("随访", "Follow-up"),
    },
    "MessageKind": {"USER": ("用户消息", "User message"), "SYSTEM": ("系统消息", "System message")},
    "ContentStatus": {
        "VISIBLE": ("可见", "Visible"),
        "HELD": ("待审核", "Held for review"),
        "HIDDEN": ("已隐藏", "Hidden"),
    },
    "PublicationStatus": {
        "DRAFT": ("草稿", "Draft"),
        "PUBLISHED": ("已发布", "Published"),
        "ARCHIVED": ("已归档", "Archived"),
    },
    "ContentKind": {"ARTICLE": ("文章", "Article"), "VIDEO": ("视频", "Video")},
    "ModerationAction": {
        "BLOCK": ("拦截", "Block"),
        "HOLD": ("待审", "Hold for review"),
        "REPLACE": ("替换", "Replace"),
    },
    "AssignmentStatus": {
        "ASSIGNED": ("已分配", "Assigned"),
        "IN_PROGRESS": ("学习中", "In progress"),
        "COMPLETED": ("已完成", "Completed"),
    },
    "MisfirePolicy": {"SKIP": ("跳过", "Skip"), "RUN_ONCE": ("补跑一次", "Run once")},
    "JobRunTrigger": {"SCHEDULE": ("定时", "Schedule"), "CATCH_UP": ("补跑", "Catch-up"), "MANUAL": ("手动", "Manual")},
    "JobRunStatus": {
        "RUNNING": ("运行中", "Running"),
        "SUCCEEDED": ("成功", "Succeeded"),
        "FAILED": ("失败", "Failed"),
        "SKIPPED": ("已跳过", "Skipped"),
    },
    "ServiceStatsGroup": {
        "OPERATION": ("按操作", "By operation"),
        "STAFF": ("按人员", "By staff"),
        "ROLE": ("按角色", "By role"),
    },
    "SessionClient": {
        "CONSOLE": ("管理后台", "Console"),
        "GRAPHIQL": ("GraphiQL", "GraphiQL"),
        "MINI_PROGRAM": ("小程序", "Mini program"),
    },
    "RevealableField": {
        "PHONE": ("手机号", "Phone"),
        "ID_NUMBER": ("证件号", "Identity number"),
        "EMERGENCY_CONTACT_PHONE": ("紧急联系人电话", "Emergency contact phone"),
    },
    "MenuKind": {"DIRECTORY": ("目录", "Directory"), "PAGE": ("页面", "Page"), "BUTTON": ("按钮", "Button")},
    # Appointments and doctor schedules.
    "ClinicSession": {
        "MORNING": ("上午", "Morning"),
        "AFTERNOON": ("下午", "Afternoon"),
        "EVENING": ("晚间", "Evening"),
        "CUSTOM": ("自定义时段", "Custom hours"),
    },
    "ScheduleStatus": {"OPEN": ("开放", "Open"), "CLOSED": ("停止预约", "Closed"), "CANCELLED": ("停诊", "Cancelled")},
    "AppointmentKind": {
        "FIRST_VISIT": ("初诊", "First visit"),
        "FOLLOW_UP": ("复诊", "Follow-up"),
        "TELECONSULTATION": ("远程问诊", "Teleconsultation"),
    },
    "AppointmentStatus": {
        "REQUESTED": ("待确认", "Requested"),
        "BOOKED": ("已预约", "Booked"),
        "CHECKED_IN": ("已签到", "Checked in"),
        "COMPLETED": ("已完成", "Completed"),
        "CANCELLED": ("已取消", "Cancelled"),
        "MISSED": ("爽约", "Missed"),
    },
    "BookedVia": {"PATIENT": ("患者自助", "Patient"), "STAFF": ("工作人员", "Staff")},
    "SchedulePlanFormat": {"XLSX": ("Excel 工作簿", "Excel workbook"), "CSV": ("CSV 文件", "CSV file")},
    "SchedulePlanLanguage": {
        "BOTH": ("中英双语", "Chinese and English"),
        "ZH": ("中文", "Chinese"),
        "EN": ("英文", "English"),
    },
    "BindingCodeState": {"ACTIVE": ("有效", "Active"), "USED": ("已使用", "Used"), "EXPIRED": ("已失效", "Expired")},
    "FhirExportLevel": {
        "GROUP": ("科室及下级", "Department and below"),
        "PATIENT": ("全部可及患者", "Every patient in reach"),
    },
    "FhirExportStatus": {
        "ACCEPTED": ("排队中", "Queued"),
        "RUNNING": ("导出中", "Running"),
        "COMPLETED": ("已完成", "Completed"),
        "FAILED": ("失败", "Failed"),
        "CANCELLED": ("已取消", "Cancelled"),
        "EXPIRED": ("已过期", "Expired"),
    },
}
