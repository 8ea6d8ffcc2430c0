"""Learning tasks for medical staff: managers set them for a department, every member of it holding
`capability:learning.assignee` receives them (assignment.py), and chiefs follow completion (tasks.py)."""

from __future__ import annotations

from resolvers.learning.assignment import missing_assignments
from resolvers.learning.loaders import LearningLoaders, learning_loaders
from resolvers.learning.tasks import (
    TaskInput,
    create_task,
    delete_task,
    get_task,
    list_tasks,
    my_assignments,
    task_assignments,
    update_progress,
    update_task,
)

__all__ = [
    "LearningLoaders",
    "TaskInput",
    "create_task",
    "delete_task",
    "get_task",
    "learning_loaders",
    "list_tasks",
    "missing_assignments",
    "my_assignments",
    "task_assignments",
    "update_progress",
    "update_task",
]
