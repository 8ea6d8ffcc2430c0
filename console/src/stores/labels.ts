import { defineStore } from 'pinia'
import { client } from '@/api/client'
import { EnumLabelsDocument } from '@/gql/graphql'
import { useLocale } from '@/stores/locale'

interface Label {
  zh: string
  en: string
  sortOrder: number
  inUse: boolean
}

/**
 * The labels the API serves for its coded values (`dictionaries`: the defaults of resolvers/dictionary/labels.py as
 * an admin may have renamed them), asked once per login. Until they come (or when the role's schema lacks them) a
 * value shows as its code.
 */
export const useLabels = defineStore('labels', {
  state: () => ({ state: 'idle' as 'idle' | 'loading' | 'ready' | 'failed', dictionaries: {} as Record<string, Record<string, Label>> }),
  actions: {
    async load(): Promise<void> {
      if (this.state === 'loading' || this.state === 'ready') return
      this.state = 'loading'
      const result = await client.query(EnumLabelsDocument, {}).toPromise()
      if (result.error || !result.data) {
        this.state = 'failed'
        return
      }
      const loaded: Record<string, Record<string, Label>> = {}
      for (const d of result.data.dictionaries) {
        loaded[d.key] = Object.fromEntries(d.entries.map((e) => [e.code, { zh: e.labelZh, en: e.labelEn, sortOrder: e.sortOrder, inUse: e.inUse }]))
      }
      this.dictionaries = loaded
      this.state = 'ready'
    },
    /** A coded value's label in the console's language (`PublicationStatus`, `PUBLISHED` -> 已发布). */
    label(dictionary: string, code: string | null | undefined): string {
      if (!code) return ''
      const entry = this.dictionaries[dictionary]?.[code]
      if (!entry) return code
      return useLocale().locale === 'en' ? entry.en : entry.zh
    },
    /** A dictionary's codes in use, in the order the admin gave them (for a filter's or a form's choices). */
    codes(dictionary: string, fallback: readonly string[]): string[] {
      const entries = this.dictionaries[dictionary]
      if (!entries) return [...fallback]
      return Object.entries(entries)
        .filter(([, e]) => e.inUse)
        .sort((a, b) => a[1].sortOrder - b[1].sortOrder)
        .map(([code]) => code)
    },
    reset(): void {
      this.state = 'idle'
      this.dictionaries = {}
    },
  },
})
