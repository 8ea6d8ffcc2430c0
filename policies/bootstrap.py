"""What every installation needs before anyone logs in: the built-in roles, the default policy and the menu.

Run by `server.py migrate` (cli.py) after the migrations, and safe to run again at any time: a role that
exists is left as it is, and a default-policy line is added only if it was never seeded before (a line an
admin revoked stays revoked); the same for the standard menu (policies/menus.py), entry by entry, so an
entry an admin renamed, moved or deleted stays so. Not demo data (resolvers/demo/): production runs it too.
"""

from __future__ import annotations

from sqlalchemy import select

from core.db import Database
from models.role import Role
from policies.menus import seed_standard_menu
from policies.roles import BUILTIN_ROLES
from policies.store import seed_default_policy


async def ensure_builtin(db: Database) -> int:
    """Built-in roles, default-policy lines and standard menu entries never seeded before; how many policy lines
    were added."""
    async with db.transaction() as session:
        existing = set((await session.execute(select(Role.key))).scalars().all())
        for key, name, scope in BUILTIN_ROLES:
            if key not in existing:
                session.add(Role(key=key, name=name, data_scope=scope.value, is_builtin=True))
        added = await seed_default_policy(session)
        await seed_standard_menu(session)
        return added
