"""The console's menu: admins edit the tree; everyone gets the entries their own schema lets them open."""

from __future__ import annotations

from typing import Annotated

import strawberry

from core.ids import decode_id, decode_optional_id, encode_id
from models.menu import Menu, MenuKind
from resolvers import menu as menus
from resolvers.data.context import Info
from schema.engine.catalog import holds

MenuKindEnum = strawberry.enum(MenuKind, name="MenuKind", description="Directory, page or button.")


@strawberry.type(
    name="Menu", description="One entry of the console's menu (a flat list: build the tree from parentId)."
)
class MenuType:
    id: strawberry.ID = strawberry.field(description="The entry's id.")
    key: str = strawberry.field(description="A stable key the console maps to its page (`clinical.patients`).")
    parent_id: strawberry.ID | None = strawberry.field(description="The entry above it; null at the top.")
    kind: MenuKindEnum = strawberry.field(description="Directory, page or button.")  # type: ignore[valid-type]
    title_zh: str = strawberry.field(description="Chinese title.")
    title_en: str = strawberry.field(description="English title.")
    path: str = strawberry.field(description="The console route of a page (empty for directories and buttons).")
    icon: str = strawberry.field(description="The console's icon name.")
    sort_order: int = strawberry.field(description="Order among its siblings, smallest first.")
    visible: bool = strawberry.field(description="Shown in menus at all (a hidden entry is in nobody's myMenus).")
    needs: list[str] = strawberry.field(
        description="Schema coordinates and capabilities its page uses: shown only to users whose schema holds all."
    )

    @classmethod
    def from_row(cls, row: Menu) -> MenuType:
        return cls(
            id=strawberry.ID(encode_id("Menu", row.id)),  # type: ignore[arg-type]
            key=row.key,
            parent_id=strawberry.ID(encode_id("Menu", row.parent_id)) if row.parent_id else None,
            kind=MenuKind(row.kind),
            title_zh=row.title_zh,
            title_en=row.title_en,
            path=row.path,
            icon=row.icon,
            sort_order=row.sort_order,
            visible=row.visible,
            needs=list(row.needs),
        )


@strawberry.input(description="A new menu entry.")
class CreateMenuInput:
    key: str = strawberry.field(description="Unique key: 2-64 lower-case letters, digits, '_', '.' or '-'.")
    title_zh: str = strawberry.field(description="Chinese title (1-100 characters).")
    title_en: str = strawberry.field(description="English title (1-100 characters).")
    kind: MenuKindEnum = strawberry.field(default=MenuKind.PAGE, description="Directory, page or button.")  # type: ignore[valid-type]
    parent_id: strawberry.ID | None = strawberry.field(default=None, description="The entry above it (not a button).")
    path: str = strawberry.field(default="", description="Console route (up to 200 characters).")
    icon: str = strawberry.field(default="", description="Icon name (up to 64 characters).")
    sort_order: int = strawberry.field(default=0, description="Order among its siblings.")
    visible: bool = strawberry.field(default=True, description="Shown in menus at all.")
    needs: list[str] = strawberry.field(default_factory=list, description="Coordinates and capabilities it needs.")


@strawberry.input(description="What to change about a menu entry (use moveMenu to move it); left out: unchanged.")
class UpdateMenuInput:
    key: str | None = strawberry.field(default=None, description="New key.")
    title_zh: str | None = strawberry.field(default=None, description="New Chinese title.")
    title_en: str | None = strawberry.field(default=None, description="New English title.")
    kind: MenuKindEnum | None = strawberry.field(default=None, description="New kind.")  # type: ignore[valid-type]
    path: str | None = strawberry.field(default=None, description="New route.")
    icon: str | None = strawberry.field(default=None, description="New icon.")
    sort_order: int | None = strawberry.field(default=None, description="New order among its siblings.")
    visible: bool | None = strawberry.field(default=None, description="Shown in menus at all.")
    needs: list[str] | None = strawberry.field(default=None, description="What it needs, replacing the list.")


def _data(source: CreateMenuInput | UpdateMenuInput) -> menus.MenuInput:
    return menus.MenuInput(
        key=source.key,
        kind=MenuKind(source.kind) if source.kind is not None else None,
        title_zh=source.title_zh,
        title_en=source.title_en,
        path=source.path,
        icon=source.icon,
        sort_order=source.sort_order,
        visible=source.visible,
        needs=source.needs,
    )


def _known(info: Info) -> frozenset[str]:
    return menus.known_needs(info.context.services.coordinates)


@strawberry.type
class MenuQuery:
    @strawberry.field(description="Every menu entry, hidden ones included, as a flat list (for editing the menu).")
    async def menus(self, info: Info) -> list[MenuType]:
        return [MenuType.from_row(row) for row in await menus.list_menus(info.context)]

    @strawberry.field(description="The entries you may open: each shown only when your schema holds all it needs.")
    async def my_menus(self, info: Info) -> list[MenuType]:
        schema = info.schema
        rows = await menus.my_menus(info.context, lambda coordinate: holds(schema, coordinate))
        return [MenuType.from_row(row) for row in rows]


@strawberry.type
class MenuMutation:
    @strawberry.mutation(description="Add a menu entry.")
    async def create_menu(
        self, info: Info, input: Annotated[CreateMenuInput, strawberry.argument(description="The entry.")]
    ) -> MenuType:
        parent = decode_optional_id("Menu", input.parent_id)
        return MenuType.from_row(await menus.create_menu(info.context, _data(input), parent, _known(info)))

    @strawberry.mutation(
        description="Change a menu entry's key, titles, kind, route, icon, order, visibility or needs."
    )
    async def update_menu(
        self,
        info: Info,
        id: Annotated[strawberry.ID, strawberry.argument(description="The entry.")],
        input: Annotated[UpdateMenuInput, strawberry.argument(description="What to change.")],
    ) -> MenuType:
        row = await menus.update_menu(info.context, decode_id("Menu", id), _data(input), _known(info))
        return MenuType.from_row(row)

    @strawberry.mutation(description="Move a menu entry under another (or to the top); never below itself.")
    async def move_menu(
        self,
        info: Info,
        id: Annotated[strawberry.ID, strawberry.argument(description="The entry.")],
        parent_id: Annotated[strawberry.ID | None, strawberry.argument(description="The new parent; null: top.")],
        sort_order: Annotated[int | None, strawberry.argument(description="Its order there.")] = None,
    ) -> MenuType:
        row = await menus.move_menu(
            info.context, decode_id("Menu", id), decode_optional_id("Menu", parent_id), sort_order
        )
        return MenuType.from_row(row)

    @strawberry.mutation(description="Delete a menu entry with no entries below it.")
    async def delete_menu(
        self, info: Info, id: Annotated[strawberry.ID, strawberry.argument(description="The entry.")]
    ) -> MenuType:
        return MenuType.from_row(await menus.delete_menu(info.context, decode_id("Menu", id)))
