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
