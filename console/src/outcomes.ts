// The outcome measures of a patient's follow-ups as points over time: recorded outcomes, or the patient's own
// answer (pain score) where nothing was recorded yet; in due-date order.
export interface FollowUpLike {
  dueDate: string
  status: string
  painScore: number | null
  wexnerScore: number | null
  satisfaction: number | null
  response?: { painScore: number | null } | null
}

export function outcomePoints(followUps: readonly FollowUpLike[]) {
  return [...followUps]
    .filter((f) => f.status === 'COMPLETED' || f.response)
    .sort((a, b) => a.dueDate.localeCompare(b.dueDate))
    .map((f) => ({
      date: f.dueDate,
      painScore: f.painScore ?? f.response?.painScore ?? null,
      wexnerScore: f.wexnerScore,
      satisfaction: f.satisfaction,
    }))
    .filter((p) => p.painScore !== null || p.wexnerScore !== null || p.satisfaction !== null)
}

/** True when a shown value is masked (`138****5678`): it can be revealed with a reason. */
export function isMasked(value: string | null | undefined): boolean {
  return !!value && value.includes('*')
}
