// The schedule calendar's arithmetic: a week's days (Monday first, in the browser's calendar, which is the
// clinic's), and the sessions of a week laid out by day and clinic session (morning, afternoon, evening, custom).

export const CLINIC_SESSIONS = ['MORNING', 'AFTERNOON', 'EVENING', 'CUSTOM'] as const
export type ClinicSessionKey = (typeof CLINIC_SESSIONS)[number]

/** A calendar day as the API writes it (YYYY-MM-DD), from a local date. */
export function isoDay(date: Date): string {
  const y = date.getFullYear()
  const m = String(date.getMonth() + 1).padStart(2, '0')
  const d = String(date.getDate()).padStart(2, '0')
  return `${y}-${m}-${d}`
}

/** A local date from YYYY-MM-DD (noon, so no daylight-saving shift moves it to another day). */
export function parseDay(day: string): Date {
  const [y, m, d] = day.split('-').map(Number)
  return new Date(y ?? 1970, (m ?? 1) - 1, d ?? 1, 12)
}

export function addDays(day: string, days: number): string {
  const date = parseDay(day)
  date.setDate(date.getDate() + days)
  return isoDay(date)
}

/** The Monday of the week holding this day. */
export function weekStart(day: string): string {
  const weekday = (parseDay(day).getDay() + 6) % 7 // Monday 0 ... Sunday 6
  return addDays(day, -weekday)
}

/** The seven days of the week starting on this Monday. */
export function weekDays(monday: string): string[] {
  return Array.from({ length: 7 }, (_, i) => addDays(monday, i))
}

export interface SessionLike {
  id: string
  day: string
  session: string
  startTime: string
  physicianId: string
  departmentId: string
  physicianName?: string | null
  departmentName?: string | null
  capacity: number
  booked: number
  status: string
}

/** Which sessions to show: one department's, one physician's, or all. */
export function filterSessions<T extends SessionLike>(sessions: readonly T[], departmentId: string, physicianId: string): T[] {
  return sessions.filter((s) => (!departmentId || s.departmentId === departmentId) && (!physicianId || s.physicianId === physicianId))
}

/**
 * The calendar grid: for each clinic session that has anything this week (morning, afternoon, evening always; custom
 * hours only when some), one cell per day with its sessions by start time then physician.
 */
export function weekGrid<T extends SessionLike>(sessions: readonly T[], days: readonly string[]): { session: string; cells: T[][] }[] {
  const rows: { session: string; cells: T[][] }[] = []
  for (const session of CLINIC_SESSIONS) {
    const cells = days.map((day) =>
      sessions
        .filter((s) => s.day === day && s.session === session)
        .sort((a, b) => a.startTime.localeCompare(b.startTime) || (a.physicianName ?? '').localeCompare(b.physicianName ?? '')),
    )
    if (session === 'CUSTOM' && cells.every((c) => c.length === 0)) continue
    rows.push({ session, cells })
  }
  return rows
}

/** The choices of the filters, from the sessions loaded: each department and physician once, by name. */
export function choices(sessions: readonly SessionLike[], departmentId = ''): {
  departments: { id: string; name: string }[]
  physicians: { id: string; name: string }[]
} {
  const departments = new Map<string, string>()
  const physicians = new Map<string, string>()
  for (const s of sessions) {
    departments.set(s.departmentId, s.departmentName ?? s.departmentId)
    if (!departmentId || s.departmentId === departmentId) physicians.set(s.physicianId, s.physicianName ?? s.physicianId)
  }
  const sorted = (m: Map<string, string>) => [...m].map(([id, name]) => ({ id, name })).sort((a, b) => a.name.localeCompare(b.name))
  return { departments: sorted(departments), physicians: sorted(physicians) }
}

/** How full a session is, for its colour: free places left, full, or not booking (closed, cancelled). */
export function fullness(s: Pick<SessionLike, 'capacity' | 'booked' | 'status'>): 'open' | 'busy' | 'full' | 'off' {
  if (s.status !== 'OPEN') return 'off'
  if (s.booked >= s.capacity) return 'full'
  return s.booked * 5 >= s.capacity * 4 ? 'busy' : 'open'
}

export interface ImportProblem {
  row: number
  column?: string | null
  message: string
}

/** An import report's problems by row (the file's line, 1 is the header), each row's columns and messages. */
export function problemsByRow(problems: readonly ImportProblem[]): { row: number; items: { column: string; message: string }[] }[] {
  const rows = new Map<number, { column: string; message: string }[]>()
  for (const p of problems) {
    const items = rows.get(p.row) ?? []
    items.push({ column: p.column ?? '', message: p.message })
    rows.set(p.row, items)
  }
  return [...rows].sort((a, b) => a[0] - b[0]).map(([row, items]) => ({ row, items }))
}

/** Whether a dry run's report lets the same file be imported for real. */
export function canCommit(report: { dryRun: boolean; problemCount: number } | null): boolean {
  return !!report && report.dryRun && report.problemCount === 0
}
