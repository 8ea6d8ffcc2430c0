// An amendment's `changes` ({field: {before, after}}) as lines a person reads: "painScore: 3 → 5".
export function changeLines(changes: unknown): string[] {
  if (!changes || typeof changes !== 'object') return []
  return Object.entries(changes as Record<string, unknown>).map(([field, change]) => {
    if (change && typeof change === 'object' && ('before' in change || 'after' in change)) {
      const { before, after } = change as { before?: unknown; after?: unknown }
      return `${field}: ${show(before)} → ${show(after)}`
    }
    return `${field}: ${show(change)}`
  })
}

function show(value: unknown): string {
  if (value === null || value === undefined) return '—'
  if (typeof value === 'object') return JSON.stringify(value)
  return String(value)
}
