import type { CombinedError } from '@urql/core'

/** What a failed operation tells a person: the first error's code, its message, and the input field it names. */
export interface ErrorInfo {
  code: string
  message: string
  field?: string
  totpRequired?: boolean
}

export function errorInfo(error: CombinedError): ErrorInfo {
  const first = error.graphQLErrors[0]
  if (first) {
    const extensions = (first.extensions ?? {}) as Record<string, unknown>
    return {
      code: String(extensions.code ?? 'INTERNAL'),
      message: first.message,
      field: typeof extensions.field === 'string' ? extensions.field : undefined,
      totpRequired: extensions.totpRequired === true,
    }
  }
  if (error.response?.status === 401) return { code: 'UNAUTHENTICATED', message: error.message }
  return { code: 'NETWORK', message: error.networkError?.message ?? error.message }
}

/** The operation ran against a schema that lacks a field it asks for (a role without it, or an API not there yet). */
export function isValidationFailure(error: CombinedError | undefined): boolean {
  return !!error?.graphQLErrors.some((e) => e.extensions?.code === 'GRAPHQL_VALIDATION_FAILED')
}

/** A sentence for a message box: the code's meaning, the server's message, the field of a BAD_USER_INPUT. */
export function describe(info: ErrorInfo, explain: (code: string) => string | undefined): string {
  const meaning = explain(info.code)
  const parts = [meaning, info.message].filter((p, i, all) => p && all.indexOf(p) === i)
  const text = parts.join(': ')
  return info.field ? `${text} (${info.field})` : text
}
