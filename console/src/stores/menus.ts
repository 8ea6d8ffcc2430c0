import { defineStore } from 'pinia'
import { client } from '@/api/client'
import { errorInfo, isValidationFailure } from '@/api/errors'
import { MyMenusDocument } from '@/gql/graphql'
import { buildTree, type MenuEntry, type MenuNode } from '@/menus'

export type MenuState = 'idle' | 'loading' | 'ready' | 'unavailable' | 'failed'

export const useMenus = defineStore('menus', {
  state: () => ({
    state: 'idle' as MenuState,
    entries: [] as MenuEntry[],
    error: '',
  }),
  getters: {
    tree: (state): MenuNode[] => buildTree(state.entries),
    pages: (state): MenuEntry[] => state.entries.filter((entry) => entry.kind === 'page'),
    /** Button-level permission keys (`kind: button`): what a page may offer. */
    buttons: (state): Set<string> => new Set(state.entries.filter((e) => e.kind === 'button').map((e) => e.key)),
  },
  actions: {
    async load(): Promise<void> {
      this.state = 'loading'
      const result = await client.query(MyMenusDocument, {}).toPromise()
      if (isValidationFailure(result.error)) {
        // The role's schema has no myMenus: no sidebar and no page but the dashboard (never guessed by introspection).
        this.entries = []
        this.state = 'unavailable'
        return
      }
      const data = result.data as { myMenus?: unknown[] } | undefined
      if (result.error || !data?.myMenus) {
        this.entries = []
        this.error = result.error ? errorInfo(result.error).message : ''
        this.state = 'failed'
        return
      }
      this.entries = data.myMenus.map(normaliseEntry)
      this.state = 'ready'
    },
    reset(): void {
      this.state = 'idle'
      this.entries = []
      this.error = ''
    },
  },
})

/** myMenus' entry as the console uses it (kinds in lower case, ids as strings). */
export function normaliseEntry(raw: unknown): MenuEntry {
  const entry = raw as Record<string, unknown>
  return {
    id: String(entry.id),
    parentId: entry.parentId == null ? null : String(entry.parentId),
    key: String(entry.key),
    titleZh: String(entry.titleZh ?? entry.key),
    titleEn: String(entry.titleEn ?? entry.key),
    path: entry.path ? String(entry.path) : null,
    icon: entry.icon ? String(entry.icon) : null,
    order: Number(entry.sortOrder ?? 0),
    kind: String(entry.kind ?? 'page').toLowerCase() as MenuEntry['kind'],
  }
}
