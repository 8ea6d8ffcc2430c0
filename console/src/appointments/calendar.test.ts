import { describe, expect, it } from 'vitest'
import { addDays, canCommit, choices, filterSessions, fullness, problemsByRow, weekDays, weekGrid, weekStart } from './calendar'

const s = (id: string, day: string, session: string, extra: Record<string, unknown> = {}) => ({
  id,
  day,
  session,
  startTime: session === 'MORNING' ? '08:00:00' : '14:00:00',
  physicianId: 'p1',
  departmentId: 'd1',
  physicianName: '王医生',
  departmentName: '肛肠科',
  capacity: 10,
  booked: 2,
  status: 'OPEN',
  ...extra,
})

describe('weeks', () => {
  it('starts on Monday', () => {
    expect(weekStart('2026-12-01')).toBe('2026-11-30') // a Tuesday
    expect(weekStart('2026-11-30')).toBe('2026-11-30')
    expect(weekStart('2026-12-06')).toBe('2026-11-30') // Sunday belongs to the week before
  })
  it('crosses months and years', () => {
    expect(addDays('2026-12-31', 1)).toBe('2027-01-01')
    expect(weekDays('2026-12-28')).toEqual(['2026-12-28', '2026-12-29', '2026-12-30', '2026-12-31', '2027-01-01', '2027-01-02', '2027-01-03'])
  })
})

describe('the grid', () => {
  const days = weekDays('2026-11-30')
  it('puts each session in its day and clinic session, custom hours only when there are some', () => {
    const grid = weekGrid([s('a', '2026-12-01', 'MORNING'), s('b', '2026-12-01', 'AFTERNOON'), s('c', '2026-12-07', 'MORNING')], days)
    expect(grid.map((r) => r.session)).toEqual(['MORNING', 'AFTERNOON', 'EVENING'])
    expect(grid[0]!.cells[1]!.map((x) => x.id)).toEqual(['a'])
    expect(grid[1]!.cells[1]!.map((x) => x.id)).toEqual(['b'])
    expect(grid.flatMap((r) => r.cells.flat()).map((x) => x.id)).not.toContain('c') // next week
    expect(weekGrid([s('d', '2026-12-02', 'CUSTOM')], days).map((r) => r.session)).toContain('CUSTOM')
  })
  it('filters by department and physician, and offers each once', () => {
    const all = [s('a', '2026-12-01', 'MORNING'), s('b', '2026-12-01', 'MORNING', { physicianId: 'p2', physicianName: '李医生', departmentId: 'd2', departmentName: '普外科' })]
    expect(filterSessions(all, 'd2', '').map((x) => x.id)).toEqual(['b'])
    expect(filterSessions(all, '', 'p1').map((x) => x.id)).toEqual(['a'])
    expect(choices(all).departments.map((d) => d.id).sort()).toEqual(['d1', 'd2'])
    expect(choices(all, 'd1').physicians).toEqual([{ id: 'p1', name: '王医生' }])
  })
  it('colours by fullness', () => {
    expect(fullness({ capacity: 10, booked: 2, status: 'OPEN' })).toBe('open')
    expect(fullness({ capacity: 10, booked: 8, status: 'OPEN' })).toBe('busy')
    expect(fullness({ capacity: 10, booked: 10, status: 'OPEN' })).toBe('full')
    expect(fullness({ capacity: 10, booked: 0, status: 'CANCELLED' })).toBe('off')
  })
})

describe('the import report', () => {
  it('groups problems by row, in file order', () => {
    const rows = problemsByRow([
      { row: 4, column: 'Capacity', message: 'not a number' },
      { row: 2, column: 'Physician', message: 'Unknown physician' },
      { row: 4, column: null, message: 'overlaps row 3' },
    ])
    expect(rows).toEqual([
      { row: 2, items: [{ column: 'Physician', message: 'Unknown physician' }] },
      { row: 4, items: [{ column: 'Capacity', message: 'not a number' }, { column: '', message: 'overlaps row 3' }] },
    ])
  })
  it('commits only after a clean dry run', () => {
    expect(canCommit(null)).toBe(false)
    expect(canCommit({ dryRun: true, problemCount: 2 })).toBe(false)
    expect(canCommit({ dryRun: false, problemCount: 0 })).toBe(false)
    expect(canCommit({ dryRun: true, problemCount: 0 })).toBe(true)
  })
})
