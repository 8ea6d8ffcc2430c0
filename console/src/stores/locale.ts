import { defineStore } from 'pinia'
import { ERROR_CODES, MESSAGES, type Locale, type MessageKey } from '@/i18n/messages'

const KEY = 'followup.locale'

export const useLocale = defineStore('locale', {
  state: () => ({ locale: (localStorage.getItem(KEY) as Locale | null) ?? ('zh-CN' as Locale) }),
  actions: {
    toggle() {
      this.locale = this.locale === 'zh-CN' ? 'en' : 'zh-CN'
      localStorage.setItem(KEY, this.locale)
      document.documentElement.lang = this.locale
    },
    t(key: MessageKey, params: Record<string, string | number> = {}): string {
      return MESSAGES[this.locale][key].replace(/\{(\w+)\}/g, (_, name: string) => String(params[name] ?? ''))
    },
    errorText(code: string): string | undefined {
      return ERROR_CODES[this.locale][code]
    },
  },
})
