// Menu entries as myMenus gives them (a flat list; a tree by parentId) and the tree the sidebar draws.
export interface MenuEntry {
  id: string
  parentId: string | null
  key: string
  titleZh: string
  titleEn: string
  path: string | null
  icon: string | null
  order: number
  kind: 'directory' | 'page' | 'button'
}

export interface MenuNode extends MenuEntry {
  children: MenuNode[]
}

/** Directories and pages as a tree, each level by `order`; buttons are permissions, not sidebar entries. An entry
 * whose parent is missing (not granted to the role) hangs at the top. */
export function buildTree(entries: readonly MenuEntry[]): MenuNode[] {
  const nodes = new Map<string, MenuNode>()
  for (const entry of entries) if (entry.kind !== 'button') nodes.set(entry.id, { ...entry, children: [] })
  const roots: MenuNode[] = []
  for (const node of nodes.values()) {
    const parent = node.parentId ? nodes.get(node.parentId) : undefined
    if (parent) parent.children.push(node)
    else roots.push(node)
  }
  const sort = (list: MenuNode[]) => {
    list.sort((a, b) => a.order - b.order || a.id.localeCompare(b.id))
    for (const node of list) sort(node.children)
  }
  sort(roots)
  // A directory left with no page under it is not shown.
  const prune = (list: MenuNode[]): MenuNode[] =>
    list
      .map((node) => ({ ...node, children: prune(node.children) }))
      .filter((node) => node.kind === 'page' || node.children.length > 0)
  return prune(roots)
}

/** A route path for a page entry: its own path, absolute, else /<key>. */
export function routePath(entry: MenuEntry): string {
  const raw = entry.path?.trim() || entry.key
  return raw.startsWith('/') ? raw : `/${raw}`
}
