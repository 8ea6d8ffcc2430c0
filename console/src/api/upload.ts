import type { TypedDocumentNode } from '@urql/core'
import { print } from 'graphql'
import { client, currentTokens } from './client'
import type { ErrorInfo } from './errors'
import { needsRefresh } from './session'
import { MeDocument } from '@/gql/graphql'

/**
 * The GraphQL multipart request (what the API's schema/engine/multipart.py reads): an `operations` part with the
 * document's text and its variables (the file's variable null), a `map` naming that variable, then the file.
 * Sent with the Authorization header, which the server requires of every multipart request.
 */
export function multipartBody(query: string, variables: Record<string, unknown>, fileVariable: string, file: Blob, filename: string): FormData {
  const body = new FormData()
  body.append('operations', JSON.stringify({ query, variables: { ...variables, [fileVariable]: null } }))
  body.append('map', JSON.stringify({ '0': [`variables.${fileVariable}`] }))
  body.append('0', file, filename)
  return body
}

/** The first error of a GraphQL answer as the console shows it (as errors.ts does for urql's results). */
export function answerError(answer: { errors?: { message: string; extensions?: Record<string, unknown> }[] }, status: number): ErrorInfo | null {
  const first = answer.errors?.[0]
  if (first) {
    const extensions = first.extensions ?? {}
    return {
      code: String(extensions.code ?? 'INTERNAL'),
      message: first.message,
      field: typeof extensions.field === 'string' ? extensions.field : undefined,
    }
  }
  if (status === 401) return { code: 'UNAUTHENTICATED', message: '' }
  if (status >= 400) return { code: 'INTERNAL', message: `HTTP ${status}` }
  return null
}

/**
 * Run a mutation taking one file (not through urql: persisted-query hashes and multipart do not mix). The access
 * token is refreshed first when it is about to end (an ordinary query through urql does it).
 */
export async function uploadMutation<Data, Variables extends Record<string, unknown>>(
  document: TypedDocumentNode<Data, Variables>,
  variables: Omit<Variables, 'file'>,
  file: File,
): Promise<{ data: Data | null; error: ErrorInfo | null }> {
  if (needsRefresh(currentTokens())) await client.query(MeDocument, {}).toPromise()
  const tokens = currentTokens()
  if (!tokens) return { data: null, error: { code: 'UNAUTHENTICATED', message: '' } }
  try {
    const response = await fetch('/graphql', {
      method: 'POST',
      headers: { Authorization: `Bearer ${tokens.accessToken}` },
      body: multipartBody(print(document), variables, 'file', file, file.name),
    })
    const answer = (await response.json()) as { data?: Data | null; errors?: { message: string; extensions?: Record<string, unknown> }[] }
    return { data: answer.data ?? null, error: answerError(answer, response.status) }
  } catch (problem) {
    return { data: null, error: { code: 'NETWORK', message: String(problem) } }
  }
}
