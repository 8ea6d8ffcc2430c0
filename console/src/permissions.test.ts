import { describe, expect, it } from 'vitest'
import { matrixRows, permissionCell } from './permissions'
import { treeOf } from './tree'

describe('the permission matrix', () => {
  it('has a row per object and action, and tells own lines from inherited ones', () => {
    const rows = matrixRows([{ domain: 'patient', permissions: [{ object: 'Patient.phone', actions: ['read', 'read_masked'], description: 'phone' }] }])
    expect(rows.map((r) => r.id)).toEqual(['Patient.phone|read', 'Patient.phone|read_masked'])
    const chief = {
      permissions: [{ object: 'Patient.phone', action: 'read' }],
      effectivePermissions: [
        { object: 'Patient.phone', action: 'read' },
        { object: 'Patient.phone', action: 'read_masked' },
      ],
    }
    expect(rows.map((r) => permissionCell(chief, r))).toEqual(['own', 'inherited'])
    expect(permissionCell({ permissions: [], effectivePermissions: [] }, rows[0]!)).toBe('none')
  })
})

describe('treeOf', () => {
  it('builds departments into a tree by parentId, siblings by sortOrder', () => {
    const tree = treeOf([
      { id: '1', parentId: null, name: '医院', sortOrder: 0 },
      { id: '3', parentId: '1', name: '消化内科', sortOrder: 2 },
      { id: '2', parentId: '1', name: '结直肠肛门外科', sortOrder: 1 },
    ])
    expect(tree).toHaveLength(1)
    expect(tree[0]!.children.map((c) => c.id)).toEqual(['2', '3'])
  })
})
