import type { AnyVariables, DocumentInput, OperationResult } from '@urql/core'
import { computed, ref, shallowRef, type ComputedRef, type Ref } from 'vue'
import { client as sharedClient } from './client'
import { describe, errorInfo, isValidationFailure } from './errors'
import { useLocale } from '@/stores/locale'

/** A Relay connection as the API serves it (totalCount where the type has one). */
export interface Connection<Node> {
  totalCount?: number
  pageInfo: { hasNextPage: boolean; endCursor?: string | null }
  edges: readonly { node: Node }[]
}

/** The page variables every connection query takes; the page's own variables (filters) come beside them. */
export interface PageVariables {
  first: number
  after?: string | null
}

/** What useConnection needs of a client: urql's `query(...).toPromise()` (a fake one in the unit test). */
export interface QueryClient {
  query<Data, Variables extends AnyVariables>(
    document: DocumentInput<Data, Variables>,
    variables: Variables,
  ): { toPromise(): Promise<OperationResult<Data, Variables>> }
}

export interface ConnectionOptions {
  /** Rows asked for a page (`first`). */
  first?: number
  /** `append` (default): `more` adds the next page below the rows; `replace`: it shows the next page instead. */
  mode?: 'append' | 'replace'
  client?: QueryClient
}

export interface ConnectionState<Node> {
  rows: Ref<Node[]>
  totalCount: Ref<number>
  loading: Ref<boolean>
  /** Why the last load failed, in words (the code's meaning, the message, the field); '' when it did not. */
  error: Ref<string>
  /** The failed load's extensions.code ('' when it did not fail). */
  errorCode: Ref<string>
  /** The role's schema lacks the field (GRAPHQL_VALIDATION_FAILED): the page says so rather than failing. */
  hidden: Ref<boolean>
  hasMore: ComputedRef<boolean>
  /** Pages shown since the first (1 after a reload): `replace` mode's "first page" button. */
  page: Ref<number>
  /** The first page with the current variables. */
  load(): Promise<void>
  reload(): Promise<void>
  /** The next page (appended, or in place of the rows in `replace` mode); nothing when there is none. */
  more(): Promise<void>
  /** Every page up to maxPages, shown at once when all have come (a calendar's week). */
  all(maxPages: number): Promise<void>
}

/**
 * A Relay connection for a page: the rows loaded so far, their total, loading and error state, and the next page.
 * `variables` is read on every load (filters in refs), `path` finds the connection in the query's data. A load that
 * a newer one overtook (a filter changed while it ran) is dropped, so the rows always answer the latest question.
 */
export function useConnection<Data, Variables extends PageVariables & AnyVariables, Node>(
  document: DocumentInput<Data, Variables>,
  variables: () => Omit<Variables, 'first' | 'after'>,
  path: (data: Data) => Connection<Node>,
  options: ConnectionOptions = {},
): ConnectionState<Node> {
  const locale = useLocale()
  const client = options.client ?? sharedClient
  const first = options.first ?? 50
  const mode = options.mode ?? 'append'
  const rows = shallowRef<Node[]>([]) as Ref<Node[]>
  const totalCount = ref(0)
  const loading = ref(false)
  const error = ref('')
  const errorCode = ref('')
  const hidden = ref(false)
  const page = ref(1)
  const nextCursor = ref<string | null>(null)
  let generation = 0

  /** One page; null when it failed (the state says why) or a newer load overtook it. */
  async function fetchPage(after: string | null, mine: number): Promise<Connection<Node> | null> {
    const asked = { ...variables(), first, after } as unknown as Variables
    const result = await client.query(document, asked).toPromise()
    if (mine !== generation) return null
    if (result.error || !result.data) {
      hidden.value = isValidationFailure(result.error)
      const info = result.error ? errorInfo(result.error) : null
      errorCode.value = info?.code ?? ''
      error.value = info ? describe(info, locale.errorText) : ''
      return null
    }
    error.value = ''
    errorCode.value = ''
    hidden.value = false
    return path(result.data)
  }

  function show(connection: Connection<Node>, loaded: Node[]) {
    rows.value = loaded
    if (connection.totalCount !== undefined) totalCount.value = connection.totalCount
    nextCursor.value = connection.pageInfo.hasNextPage ? (connection.pageInfo.endCursor ?? null) : null
  }

  async function run(after: string | null): Promise<void> {
    const mine = ++generation
    loading.value = true
    const connection = await fetchPage(after, mine)
    if (mine !== generation) return
    loading.value = false
    if (!connection) return
    const nodes = connection.edges.map((e) => e.node)
    show(connection, after && mode === 'append' ? [...rows.value, ...nodes] : nodes)
    page.value = after ? page.value + 1 : 1
  }

  async function all(maxPages: number): Promise<void> {
    const mine = ++generation
    loading.value = true
    const loaded: Node[] = []
    let after: string | null = null
    let last: Connection<Node> | null = null
    for (let n = 0; n < maxPages; n++) {
      const connection: Connection<Node> | null = await fetchPage(after, mine)
      if (mine !== generation) return
      if (!connection) {
        loading.value = false
        return
      }
      last = connection
      loaded.push(...connection.edges.map((e) => e.node))
      if (!connection.pageInfo.hasNextPage) break
      after = connection.pageInfo.endCursor ?? null
    }
    loading.value = false
    if (last) show(last, loaded)
    page.value = 1
  }

  const reload = () => run(null)
  return {
    rows,
    totalCount,
    loading,
    error,
    errorCode,
    hidden,
    hasMore: computed(() => nextCursor.value !== null),
    page,
    load: reload,
    reload,
    more: async () => {
      if (nextCursor.value !== null && !loading.value) await run(nextCursor.value)
    },
    all,
  }
}
