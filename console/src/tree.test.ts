import { describe, expect, it } from 'vitest'
import { parseNeeds, treeOf, withoutBranch } from './tree'

describe('moving an entry in a tree', () => {
  const items = [
    { id: '1', parentId: null, name: 'a' },
    { id: '2', parentId: '1', name: 'b' },
    { id: '3', parentId: '2', name: 'c' },
    { id: '4', parentId: null, name: 'd' },
  ]
  const ids = (nodes: { id: string; children: unknown[] }[]): string[] =>
    nodes.flatMap((n) => [n.id, ...ids(n.children as { id: string; children: unknown[] }[])])
  it('never offers the entry itself or what is below it as its parent', () => {
    expect(ids(withoutBranch(treeOf(items), '2'))).toEqual(['1', '4'])
    expect(ids(withoutBranch(treeOf(items), null))).toEqual(['1', '2', '3', '4'])
  })
})

describe("a menu entry's needs", () => {
  it('reads coordinates separated by commas, spaces or lines, each once', () => {
    expect(parseNeeds('Query.a, capability:x\nQuery.a，Mutation.b ')).toEqual(['Query.a', 'capability:x', 'Mutation.b'])
    expect(parseNeeds('  ')).toEqual([])
  })
})
