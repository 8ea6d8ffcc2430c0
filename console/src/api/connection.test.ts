import { CombinedError, type AnyVariables, type DocumentInput, type OperationResult } from '@urql/core'
import { GraphQLError, parse } from 'graphql'
import { createPinia, setActivePinia } from 'pinia'
import { beforeEach, describe, expect, it } from 'vitest'
import { ref } from 'vue'
import { useConnection, type Connection, type QueryClient } from './connection'

interface Item {
  id: string
}
interface Data {
  things: Connection<Item>
}
interface Variables {
  first: number
  after?: string | null
  search?: string | null
}
const DOCUMENT = parse('query Things($first: Int!, $after: String, $search: String) { things { totalCount } }') as DocumentInput<Data, Variables>

/** A server of `total` items named by the search, `first` at a time, the cursor being the last id's index. */
function fakeServer(total: number, fail?: (variables: Variables) => CombinedError | undefined) {
  const asked: Variables[] = []
  const waiting: (() => void)[] = []
  let hold = false
  const client: QueryClient = {
    query<D, V extends AnyVariables>(_document: DocumentInput<D, V>, variables: V) {
      const v = variables as unknown as Variables
      asked.push(v)
      const answer = (): OperationResult<D, V> => {
        const error = fail?.(v)
        if (error) return { error, data: undefined } as unknown as OperationResult<D, V>
        const start = v.after ? Number(v.after) + 1 : 0
        const end = Math.min(start + v.first, total)
        const edges = Array.from({ length: end - start }, (_, i) => ({ node: { id: `${v.search ?? ''}${start + i}` } }))
        const data: Data = { things: { totalCount: total, pageInfo: { hasNextPage: end < total, endCursor: String(end - 1) }, edges } }
        return { data } as unknown as OperationResult<D, V>
      }
      return {
        toPromise: () =>
          hold ? new Promise<OperationResult<D, V>>((resolve) => waiting.push(() => resolve(answer()))) : Promise.resolve(answer()),
      }
    },
  }
  return {
    client,
    asked,
    hold(on: boolean) {
      hold = on
    },
    release(index: number) {
      waiting[index]?.()
    },
  }
}

const ids = (rows: Item[]) => rows.map((r) => r.id)

describe('useConnection', () => {
  beforeEach(() => setActivePinia(createPinia()))

  it('loads the first page, appends the next ones, and knows when there are no more', async () => {
    const server = fakeServer(5)
    const search = ref('a')
    const c = useConnection(DOCUMENT, () => ({ search: search.value }), (d) => d.things, { first: 2, client: server.client })
    expect(c.hasMore.value).toBe(false)
    await c.load()
    expect(ids(c.rows.value)).toEqual(['a0', 'a1'])
    expect(c.totalCount.value).toBe(5)
    expect(c.hasMore.value).toBe(true)
    expect(c.loading.value).toBe(false)
    await c.more()
    await c.more()
    expect(ids(c.rows.value)).toEqual(['a0', 'a1', 'a2', 'a3', 'a4'])
    expect(c.hasMore.value).toBe(false)
    await c.more() // nothing left: no request
    expect(server.asked).toEqual([
      { search: 'a', first: 2, after: null },
      { search: 'a', first: 2, after: '1' },
      { search: 'a', first: 2, after: '3' },
    ])
    search.value = 'b' // the variables are read again on reload
    await c.reload()
    expect(ids(c.rows.value)).toEqual(['b0', 'b1'])
    expect(c.page.value).toBe(1)
  })

  it('replaces the rows with the next page in replace mode, counting pages', async () => {
    const server = fakeServer(5)
    const c = useConnection(DOCUMENT, () => ({}), (d) => d.things, { first: 2, mode: 'replace', client: server.client })
    await c.load()
    await c.more()
    expect(ids(c.rows.value)).toEqual(['2', '3'])
    expect(c.page.value).toBe(2)
    await c.reload()
    expect(c.page.value).toBe(1)
  })

  it('loads every page at once up to a limit', async () => {
    const server = fakeServer(7)
    const c = useConnection(DOCUMENT, () => ({}), (d) => d.things, { first: 2, client: server.client })
    await c.all(10)
    expect(ids(c.rows.value)).toEqual(['0', '1', '2', '3', '4', '5', '6'])
    expect(c.hasMore.value).toBe(false)
    await c.all(2)
    expect(ids(c.rows.value)).toEqual(['0', '1', '2', '3'])
    expect(c.hasMore.value).toBe(true)
  })

  it("says why a load failed from extensions.code, keeps the rows, and clears the error on the next success", async () => {
    let failing = false
    const server = fakeServer(3, () =>
      failing
        ? new CombinedError({ graphQLErrors: [new GraphQLError('Too long', { extensions: { code: 'BAD_USER_INPUT', field: 'search' } })] })
        : undefined,
    )
    const c = useConnection(DOCUMENT, () => ({}), (d) => d.things, { first: 2, client: server.client })
    await c.load()
    failing = true
    await c.more()
    expect(c.errorCode.value).toBe('BAD_USER_INPUT')
    expect(c.error.value).toContain('Too long')
    expect(c.error.value).toContain('(search)')
    expect(c.hidden.value).toBe(false)
    expect(ids(c.rows.value)).toEqual(['0', '1'])
    expect(c.loading.value).toBe(false)
    failing = false
    await c.more()
    expect(c.error.value).toBe('')
    expect(ids(c.rows.value)).toEqual(['0', '1', '2'])
  })

  it("marks a field the role's schema lacks as hidden", async () => {
    const server = fakeServer(3, () => new CombinedError({ graphQLErrors: [new GraphQLError('Cannot query field', { extensions: { code: 'GRAPHQL_VALIDATION_FAILED' } })] }))
    const c = useConnection(DOCUMENT, () => ({}), (d) => d.things, { client: server.client })
    await c.load()
    expect(c.hidden.value).toBe(true)
  })

  it('drops an answer a newer load overtook', async () => {
    const server = fakeServer(3)
    const search = ref('old')
    const c = useConnection(DOCUMENT, () => ({ search: search.value }), (d) => d.things, { first: 2, client: server.client })
    server.hold(true)
    const slow = c.load()
    search.value = 'new'
    const fast = c.reload()
    server.release(1)
    await fast
    server.release(0)
    await slow
    expect(ids(c.rows.value)).toEqual(['new0', 'new1'])
    expect(c.loading.value).toBe(false)
  })
})
