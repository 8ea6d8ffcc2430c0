// What the create and edit dialogs send: text trimmed, blank as null, and for an edit only what changed.

export type FormValues = Record<string, string | number | boolean | null | undefined | string[]>

function clean(value: FormValues[string]): FormValues[string] {
  if (typeof value === 'string') return value.trim() === '' ? null : value.trim()
  return value ?? null
}

/** A create form's input: every field, text trimmed, blank as null. */
export function createInput<T extends FormValues>(values: T): { [K in keyof T]: T[K] | null } {
  return Object.fromEntries(Object.entries(values).map(([k, v]) => [k, clean(v)])) as { [K in keyof T]: T[K] | null }
}

/** An edit form's input: only the fields whose cleaned value differs from the record's (blank and null alike). */
export function changedInput(original: FormValues, edited: FormValues): Partial<FormValues> {
  const changes: Partial<FormValues> = {}
  for (const [key, value] of Object.entries(edited)) {
    const before = clean(original[key])
    const after = clean(value)
    if (JSON.stringify(before) !== JSON.stringify(after)) changes[key] = after
  }
  return changes
}

export interface DiagnosisChoice {
  code: string
  primary: boolean
}

/** A visit's diagnoses from the ICD-10 picker: each code once, exactly one primary (the first, unless one is marked). */
export function diagnosesInput(codes: readonly string[], primary: string | null): { icd10Code: string; isPrimary: boolean }[] {
  const unique = [...new Set(codes)]
  const chosen = primary && unique.includes(primary) ? primary : unique[0]
  return unique.map((code) => ({ icd10Code: code, isPrimary: code === chosen }))
}

/** A Chinese mobile number (11 digits from 1) or nothing: the forms check it before the server does. */
export function phoneProblem(value: string | null | undefined): boolean {
  const v = (value ?? '').trim()
  return v !== '' && !/^1\d{10}$/.test(v)
}

/** A protocol's day counts as typed ("7, 30，90" or "7 30 90"): whole numbers, or null when one is not. */
export function parseOffsets(text: string): number[] | null {
  const parts = text.split(/[\s,，、]+/).filter(Boolean)
  if (!parts.length || parts.some((p) => !/^\d{1,5}$/.test(p))) return null
  return parts.map(Number)
}
