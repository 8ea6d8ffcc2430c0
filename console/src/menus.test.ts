import { describe, expect, it } from 'vitest'
import { buildTree, routePath, type MenuEntry } from './menus'
import { normaliseEntry } from './stores/menus'

const entry = (over: Partial<MenuEntry>): MenuEntry => ({
  id: '1',
  parentId: null,
  key: 'k',
  titleZh: '标题',
  titleEn: 'Title',
  path: null,
  icon: null,
  order: 0,
  kind: 'page',
  ...over,
})

describe('buildTree', () => {
  it('nests by parentId, orders each level and leaves buttons out', () => {
    const tree = buildTree([
      entry({ id: 'sys', key: 'system', kind: 'directory', order: 2 }),
      entry({ id: 'users', parentId: 'sys', key: 'users', order: 2 }),
      entry({ id: 'roles', parentId: 'sys', key: 'roles', order: 1 }),
      entry({ id: 'reveal', parentId: 'users', key: 'users:reset', kind: 'button' }),
      entry({ id: 'patients', key: 'patients', order: 1 }),
    ])
    expect(tree.map((n) => n.key)).toEqual(['patients', 'system'])
    expect(tree[1]!.children.map((n) => n.key)).toEqual(['roles', 'users'])
    expect(tree[1]!.children[1]!.children).toEqual([])
  })

  it('drops a directory with no page under it and lifts a page whose parent was not granted', () => {
    const tree = buildTree([
      entry({ id: 'empty', key: 'empty', kind: 'directory' }),
      entry({ id: 'orphan', parentId: 'missing', key: 'orphan' }),
    ])
    expect(tree.map((n) => n.key)).toEqual(['orphan'])
  })
})

describe('routePath and normaliseEntry', () => {
  it('uses the entry path, made absolute, else the key', () => {
    expect(routePath(entry({ path: '/clinical/patients' }))).toBe('/clinical/patients')
    expect(routePath(entry({ path: 'patients' }))).toBe('/patients')
    expect(routePath(entry({ path: '/system/users' }))).toBe('/system/users')
    expect(routePath(entry({ key: 'jobs', path: null }))).toBe('/jobs')
  })

  it('reads myMenus entries: enum kinds in lower case, ids as strings', () => {
    const read = normaliseEntry({ id: 7, parentId: null, key: 'patients', titleZh: '患者', titleEn: 'Patients', path: '/patients', icon: 'user', sortOrder: 3, kind: 'PAGE' })
    expect(read).toEqual(entry({ id: '7', key: 'patients', titleZh: '患者', titleEn: 'Patients', path: '/patients', icon: 'user', order: 3 }))
  })
})
