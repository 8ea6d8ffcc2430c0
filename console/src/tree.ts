// Flat lists with parentId (departments, menus) as trees, siblings by sortOrder then name.
export type TreeNode<T> = T & { children: TreeNode<T>[] }

export function treeOf<T extends { id: string; parentId?: string | null; sortOrder?: number; name?: string }>(items: readonly T[]): TreeNode<T>[] {
  const nodes = new Map<string, TreeNode<T>>()
  for (const item of items) nodes.set(item.id, { ...item, children: [] })
  const roots: TreeNode<T>[] = []
  for (const node of nodes.values()) {
    const parent = node.parentId ? nodes.get(node.parentId) : undefined
    if (parent && parent !== node) parent.children.push(node)
    else roots.push(node)
  }
  const sort = (list: TreeNode<T>[]) => {
    list.sort((a, b) => (a.sortOrder ?? 0) - (b.sortOrder ?? 0) || (a.name ?? '').localeCompare(b.name ?? ''))
    list.forEach((n) => sort(n.children))
  }
  sort(roots)
  return roots
}

/** The tree without one node and what is below it: the parents an entry may be moved under (never itself or its own). */
export function withoutBranch<T extends { id: string }>(nodes: readonly TreeNode<T>[], id: string | null | undefined): TreeNode<T>[] {
  return nodes.filter((n) => n.id !== id).map((n) => ({ ...n, children: withoutBranch(n.children, id) }))
}

/** "Query.a, capability:x" or one per line as the list of coordinates a menu entry needs. */
export function parseNeeds(text: string): string[] {
  return [...new Set(text.split(/[\s,，]+/).map((s) => s.trim()).filter(Boolean))]
}
