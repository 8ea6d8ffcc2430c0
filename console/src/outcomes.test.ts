import { describe, expect, it } from 'vitest'
import { changeLines } from './history'
import { isMasked, outcomePoints } from './outcomes'

describe('outcomePoints', () => {
  it('charts recorded outcomes and patients answers in due-date order, skipping follow-ups with nothing measured', () => {
    const points = outcomePoints([
      { dueDate: '2026-03-01', status: 'COMPLETED', painScore: 2, wexnerScore: 4, satisfaction: 5 },
      { dueDate: '2026-01-01', status: 'SCHEDULED', painScore: null, wexnerScore: null, satisfaction: null, response: { painScore: 6 } },
      { dueDate: '2026-02-01', status: 'SCHEDULED', painScore: null, wexnerScore: null, satisfaction: null },
      { dueDate: '2026-04-01', status: 'COMPLETED', painScore: null, wexnerScore: null, satisfaction: null },
    ])
    expect(points).toEqual([
      { date: '2026-01-01', painScore: 6, wexnerScore: null, satisfaction: null },
      { date: '2026-03-01', painScore: 2, wexnerScore: 4, satisfaction: 5 },
    ])
  })

  it('knows a masked value', () => {
    expect(isMasked('138****5678')).toBe(true)
    expect(isMasked('13812345678')).toBe(false)
    expect(isMasked(null)).toBe(false)
  })
})

describe('changeLines', () => {
  it('reads {field: {before, after}}', () => {
    expect(changeLines({ painScore: { before: 3, after: 5 }, phone: { changed: true } })).toEqual(['painScore: 3 → 5', 'phone: {"changed":true}'])
    expect(changeLines(null)).toEqual([])
  })
})
