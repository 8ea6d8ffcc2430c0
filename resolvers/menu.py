"""The console's menu: entries stored as data, edited by admins, and each user's own menu derived from the policy.

An entry names what its page needs (schema coordinates, capabilities). `my_menus` shows an entry only when the
caller's own schema holds every one of them (the schema layer hands in that test) and the capabilities are
theirs, so a grant or a revoke changes the menu and the schema together. A directory with nothing shown below
it is left out, and so is everything under an entry that is not shown.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass

from core.errors import bad_input, conflict, not_found
from core.timeutil import utcnow
from core.validation import check_characters
from models.menu import Menu, MenuKind
from policies.capabilities import PREFIX, Capability, is_capability
from resolvers.audit.unit import WriteUnit
from resolvers.data.context import Context

_KEY = re.compile(r"^[a-z][a-z0-9_.-]{1,63}$")
_CONFLICT = "A menu entry with that key exists"


async def list_menus(ctx: Context) -> list[Menu]:
    statement = await ctx.data.select(Menu, then=lambda s: s.order_by(Menu.sort_order, Menu.id))
    return await ctx.data.objects(statement)


async def my_menus(ctx: Context, in_schema: Callable[[str], bool]) -> list[Menu]:
    """The entries the caller may open, parents before children, as a flat list with parent ids."""
    access = await ctx.access()

    def held(need: str) -> bool:
        if is_capability(need):
            name = need[len(PREFIX) :]
            return any(c.value == name and access.can(c) for c in Capability)
        return in_schema(need)

    entries = [menu for menu in await list_menus(ctx) if menu.visible]
    children: dict[int | None, list[Menu]] = {}
    for menu in entries:
        children.setdefault(menu.parent_id, []).append(menu)

    def shown(menu: Menu) -> list[Menu]:
        if not all(held(need) for need in menu.needs):
            return []
        below = [entry for child in children.get(menu.id, []) for entry in shown(child)]
        if menu.kind == MenuKind.DIRECTORY.value and not below:
            return []
        return [menu, *below]

    return [entry for root in children.get(None, []) for entry in shown(root)]


# ---- admins' changes --------------------------------------------------------------------------------


@dataclass
class MenuInput:
    key: str | None = None
    kind: MenuKind | None = None
    title_zh: str | None = None
    title_en: str | None = None
    path: str | None = None
    icon: str | None = None
    sort_order: int | None = None
    visible: bool | None = None
    needs: Sequence[str] | None = None


def _text(value: str, field: str, limit: int, *, required: bool) -> str:
    value = check_characters(value, field).strip()
    if (required and not value) or len(value) > limit:
        raise bad_input(f"{field} must be {'1' if required else '0'} to {limit} characters", field)
    return value


def _apply(menu: Menu, data: MenuInput, known: Collection[str]) -> None:
    if data.key is not None:
        key = data.key.strip()
        if not _KEY.match(key):
            raise bad_input("Key: 2-64 lower-case letters, digits, '_', '.' or '-', starting with a letter", "key")
        menu.key = key
    if data.kind is not None:
        menu.kind = data.kind.value
    if data.title_zh is not None:
        menu.title_zh = _text(data.title_zh, "titleZh", 100, required=True)
    if data.title_en is not None:
        menu.title_en = _text(data.title_en, "titleEn", 100, required=True)
    if data.path is not None:
        menu.path = _text(data.path, "path", 200, required=False)
    if data.icon is not None:
        menu.icon = _text(data.icon, "icon", 64, required=False)
    if data.sort_order is not None:
        menu.sort_order = data.sort_order
    if data.visible is not None:
        menu.visible = data.visible
    if data.needs is not None:
        needs = list(dict.fromkeys(need.strip() for need in data.needs))
        unknown = [need for need in needs if need not in known]
        if unknown:
            raise bad_input(f"Not a schema coordinate or capability: {', '.join(unknown)}", "needs")
        menu.needs = needs


async def _parent(unit: WriteUnit, parent_id: int | None, menu_id: int | None = None) -> None:
    """The parent exists, is no button, and is not the entry itself or below it."""
    if parent_id is None:
        return
    parent: Menu | None = await unit.find(Menu, parent_id)
    if parent is None:
        raise not_found("Menu")
    if parent.kind == MenuKind.BUTTON.value:
        raise bad_input("A button holds no entries", "parentId")
    seen: set[int] = set()
    current: Menu | None = parent
    while current is not None and current.id not in seen:
        if current.id == menu_id:
            raise bad_input("A menu entry cannot be placed below itself", "parentId")
        seen.add(current.id)  # type: ignore[arg-type]
        current = await unit.find(Menu, current.parent_id)


async def create_menu(ctx: Context, data: MenuInput, parent_id: int | None, known: Collection[str]) -> Menu:
    if data.key is None or data.title_zh is None or data.title_en is None:
        raise bad_input("key, titleZh and titleEn are required", "key")
    menu = Menu(key="", title_zh="", title_en="")
    _apply(menu, MenuInput(**{**data.__dict__, "kind": data.kind or MenuKind.PAGE}), known)
    async with ctx.data.write(
        operation="createMenu", action="create", entity_type="Menu", conflict_message=_CONFLICT
    ) as unit:
        await _parent(unit, parent_id)
        menu.parent_id = parent_id
        unit.add(menu)
        await unit.flush()
        unit.entity_id = str(menu.id)
        unit.detail = {"key": menu.key, "needs": menu.needs}
    return menu


async def update_menu(ctx: Context, menu_id: int, data: MenuInput, known: Collection[str]) -> Menu:
    async with ctx.data.write(
        operation="updateMenu", action="update", entity_type="Menu", conflict_message=_CONFLICT
    ) as unit:
        menu: Menu = await unit.get(Menu, menu_id)
        unit.entity_id = str(menu_id)
        if (
            data.kind is MenuKind.BUTTON
            and menu.kind != MenuKind.BUTTON.value
            and await _has_children(ctx, unit, menu_id)
        ):
            raise bad_input("An entry with entries below it cannot become a button", "kind")
        _apply(menu, data, known)
        menu.updated_at = utcnow()
        unit.add(menu)
        unit.detail = {"key": menu.key, "needs": menu.needs}
    return menu


async def move_menu(ctx: Context, menu_id: int, parent_id: int | None, sort_order: int | None) -> Menu:
    async with ctx.data.write(operation="moveMenu", action="update", entity_type="Menu") as unit:
        menu: Menu = await unit.get(Menu, menu_id)
        unit.entity_id = str(menu_id)
        await _parent(unit, parent_id, menu_id)
        unit.detail = {"from": menu.parent_id, "to": parent_id}
        menu.parent_id = parent_id
        if sort_order is not None:
            menu.sort_order = sort_order
        menu.updated_at = utcnow()
        unit.add(menu)
    return menu


async def _has_children(ctx: Context, unit: WriteUnit, menu_id: int) -> bool:
    statement = await ctx.data.select(Menu, Menu.id, then=lambda s: s.where(Menu.parent_id == menu_id).limit(1))
    return bool(await unit.scalars(statement))


async def delete_menu(ctx: Context, menu_id: int) -> Menu:
    """Delete an entry with no entries below it."""
    async with ctx.data.write(operation="deleteMenu", action="delete", entity_type="Menu") as unit:
        menu: Menu = await unit.get(Menu, menu_id)
        unit.entity_id = str(menu_id)
        if await _has_children(ctx, unit, menu_id):
            raise conflict("The entry still holds entries: move or delete them first")
        unit.detail = {"key": menu.key}
        await unit.delete(menu)
    return menu


def known_needs(coordinates: Collection[str]) -> frozenset[str]:
    """What an entry may need: any schema coordinate or capability."""
    return frozenset(coordinates) | frozenset(c.coordinate for c in Capability)
