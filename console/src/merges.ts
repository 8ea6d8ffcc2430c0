// The merges a patient record took in, read from its amendment history (`history(PATIENT)`): a merge entry's
// changes name the merge and its two patients as opaque ids ({mergeId: {after}, keepId: {after}, mergedId:
// {after}}); an unmerge entry names the merge it undid. No query lists merges, and the history is what the role
// may see of them.

export interface HistoryEntry {
  at: string
  kind: string
  changes: unknown
  reason?: string | null
  by?: string | null
}

export interface MergeTaken {
  mergeId: string
  mergedId: string
  at: string
  reason: string
  by: string
}

function after(changes: unknown, key: string): string | null {
  if (!changes || typeof changes !== 'object') return null
  const change = (changes as Record<string, unknown>)[key]
  if (!change || typeof change !== 'object') return null
  const value = (change as { after?: unknown }).after
  return typeof value === 'string' ? value : null
}

/** The merges into this patient not undone since, newest first. */
export function mergesInto(patientId: string, entries: readonly HistoryEntry[]): MergeTaken[] {
  const undone = new Set(entries.filter((e) => e.kind === 'unmerge').map((e) => after(e.changes, 'mergeId')))
  const taken: MergeTaken[] = []
  for (const e of entries) {
    if (e.kind !== 'merge') continue
    const mergeId = after(e.changes, 'mergeId')
    const mergedId = after(e.changes, 'mergedId')
    if (!mergeId || !mergedId || after(e.changes, 'keepId') !== patientId || undone.has(mergeId)) continue
    taken.push({ mergeId, mergedId, at: e.at, reason: e.reason ?? '', by: e.by ?? '' })
  }
  return taken.sort((a, b) => b.at.localeCompare(a.at))
}
