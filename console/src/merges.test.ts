import { describe, expect, it } from 'vitest'
import { mergesInto } from './merges'

const merge = (id: string, keep: string, merged: string, at: string) => ({
  at,
  kind: 'merge',
  changes: { mergeId: { before: null, after: id }, keepId: { before: null, after: keep }, mergedId: { before: null, after: merged } },
  reason: '重复建档',
  by: '张主任',
})

describe('mergesInto', () => {
  it('lists the merges this record took in, newest first, leaving out undone ones and merges away from it', () => {
    const entries = [
      merge('M1', 'P1', 'P2', '2026-12-01T08:00:00Z'),
      merge('M2', 'P1', 'P3', '2026-12-01T09:00:00Z'),
      merge('M3', 'P9', 'P1', '2026-12-01T10:00:00Z'), // this record merged into another: not one it took in
      { at: '2026-12-01T11:00:00Z', kind: 'unmerge', changes: { mergeId: { before: null, after: 'M1' } } },
      { at: '2026-12-01T12:00:00Z', kind: 'update', changes: { allergies: { before: null, after: '青霉素' } } },
    ]
    expect(mergesInto('P1', entries)).toEqual([{ mergeId: 'M2', mergedId: 'P3', at: '2026-12-01T09:00:00Z', reason: '重复建档', by: '张主任' }])
  })

  it('ignores entries whose changes are not a merge', () => {
    expect(mergesInto('P1', [{ at: 'x', kind: 'merge', changes: null }, { at: 'y', kind: 'merge', changes: { mergeId: 'M' } }])).toEqual([])
  })
})
