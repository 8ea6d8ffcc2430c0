import { useLocale } from '@/stores/locale'

const GENDER: Record<string, [string, string]> = { MALE: ['男', 'Male'], FEMALE: ['女', 'Female'], OTHER: ['其他', 'Other'], UNKNOWN: ['未知', 'Unknown'] }
const FOLLOW_UP_STATUS: Record<string, [string, string]> = {
  SCHEDULED: ['待随访', 'Scheduled'],
  COMPLETED: ['已完成', 'Completed'],
  MISSED: ['失访', 'Missed'],
  CANCELLED: ['已取消', 'Cancelled'],
}

function pick(table: Record<string, [string, string]>, value: string | null | undefined): string {
  if (!value) return ''
  const entry = table[value]
  if (!entry) return value
  return useLocale().locale === 'en' ? entry[1] : entry[0]
}

export const genderText = (value: string | null | undefined) => pick(GENDER, value)
export const followUpStatusText = (value: string | null | undefined) => pick(FOLLOW_UP_STATUS, value)

/** An instant in the clinic's way: local date and minutes. */
export function instant(value: string | null | undefined): string {
  if (!value) return ''
  const date = new Date(value)
  return Number.isNaN(date.getTime()) ? value : date.toLocaleString(useLocale().locale, { hour12: false })
}
