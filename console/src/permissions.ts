// The permission matrix: one row per (catalog object, action), one column per role; a cell is the role's own
// policy line, one it inherits, or none.
export interface MatrixRow {
  id: string
  domain: string
  object: string
  action: string
  description: string
}

export function matrixRows(catalog: readonly { domain: string; permissions: readonly { object: string; actions: readonly string[]; description: string }[] }[]): MatrixRow[] {
  return catalog.flatMap((domain) =>
    domain.permissions.flatMap((p) =>
      p.actions.map((action) => ({ id: `${p.object}|${action}`, domain: domain.domain, object: p.object, action, description: p.description })),
    ),
  )
}

type Line = { object: string; action: string }

export function permissionCell(
  role: { permissions: readonly Line[]; effectivePermissions: readonly Line[] },
  row: Line,
): 'own' | 'inherited' | 'none' {
  const same = (line: Line) => line.object === row.object && line.action === row.action
  if (role.permissions.some(same)) return 'own'
  if (role.effectivePermissions.some(same)) return 'inherited'
  return 'none'
}
