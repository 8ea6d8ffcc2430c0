import { sha256 } from '@noble/hashes/sha2.js'
import { bytesToHex, utf8ToBytes } from '@noble/hashes/utils.js'
import {
  Client,
  fetchExchange,
  type AnyVariables,
  type CombinedError,
  type DocumentInput,
  type OperationResult,
} from '@urql/core'
import { authExchange } from '@urql/exchange-auth'
import { persistedExchange } from '@urql/exchange-persisted'
import { RefreshTokenDocument } from '@/gql/graphql'
import { isValidationFailure } from './errors'
import { loadTokens, needsRefresh, saveTokens, tokensFrom, type Tokens } from './session'
import { variantOrder } from './variants'

let tokens: Tokens | null = loadTokens()
let onSessionLost: () => void = () => {}

export function currentTokens(): Tokens | null {
  return tokens
}

export function setTokens(next: Tokens | null): void {
  tokens = next
  saveTokens(next)
}

/** Called when the session cannot go on (refresh refused): the router sends the user to login, keeping the page. */
export function whenSessionLost(callback: () => void): void {
  onSessionLost = callback
}

const ANONYMOUS_OPERATIONS = new Set(['Login', 'RefreshToken'])

function operationName(query: { definitions: readonly { kind: string; name?: { value: string } }[] }): string {
  const op = query.definitions.find((d) => d.kind === 'OperationDefinition')
  return op?.name?.value ?? ''
}

// sha256 in JavaScript: the Web Crypto API exists only in secure contexts (https or localhost), and the console
// is also opened over plain http inside hospital networks.
export function documentHash(query: string): string {
  return bytesToHex(sha256(utf8ToBytes(query)))
}

export const client = new Client({
  url: '/graphql',
  // No document cache: clinical records are read fresh each time a page opens.
  requestPolicy: 'network-only',
  preferGetMethod: false,
  exchanges: [
    authExchange(async (utils) => ({
      addAuthToOperation(operation) {
        if (!tokens || ANONYMOUS_OPERATIONS.has(operationName(operation.query))) return operation
        return utils.appendHeaders(operation, { Authorization: `Bearer ${tokens.accessToken}` })
      },
      willAuthError(operation) {
        return !ANONYMOUS_OPERATIONS.has(operationName(operation.query)) && needsRefresh(tokens)
      },
      didAuthError(error: CombinedError) {
        return error.response?.status === 401
      },
      async refreshAuth() {
        const refresh = tokens?.refreshToken
        if (!refresh) {
          setTokens(null)
          onSessionLost()
          return
        }
        const result = await utils.mutate(RefreshTokenDocument, { token: refresh })
        if (result.data?.refreshToken) {
          setTokens(tokensFrom(result.data.refreshToken))
        } else {
          setTokens(null)
          onSessionLost()
        }
      },
    })),
    // Apollo's automatic persisted queries: the hash first, the document only when the server has not seen it.
    // POST for everything: search terms (a phone or identity number) never go into a URL.
    persistedExchange({
      generateHash: async (query) => documentHash(query),
      preferGetForPersistedQueries: false,
      enableForMutation: true,
    }),
    fetchExchange,
  ],
})

/**
 * Run one family of document variants (scripts/codegen.mjs) for a user with these roles: the variant the checked-in
 * schemas choose first, and the next one when the server's schema refuses it (a policy narrowed since).
 */
export async function runVariant<Data, Variables extends AnyVariables>(
  family: string,
  documents: Record<string, DocumentInput<Data, Variables>>,
  variables: Variables,
  roles: readonly string[],
): Promise<OperationResult<Data, Variables>> {
  let last: OperationResult<Data, Variables> | undefined
  for (const name of variantOrder(family, roles)) {
    const document = documents[name]
    if (!document) continue
    last = await client.query(document, variables).toPromise()
    if (!isValidationFailure(last.error)) return last
  }
  if (!last) throw new Error(`no document given for ${family}`)
  return last
}
