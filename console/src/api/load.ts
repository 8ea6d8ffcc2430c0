import type { AnyVariables, DocumentInput } from '@urql/core'
import { reactive } from 'vue'
import { client } from './client'
import { describe, errorInfo, isValidationFailure } from './errors'
import { useLocale } from '@/stores/locale'

/** A query's state for a page: loading, its data, or why there is none. `hidden`: the role's schema lacks it. */
export interface Loaded<Data> {
  state: 'loading' | 'ready' | 'hidden' | 'error'
  data: Data | null
  error: string
}

export function loadQuery<Data, Variables extends AnyVariables>(
  document: DocumentInput<Data, Variables>,
  variables: Variables,
): Loaded<Data> {
  const locale = useLocale()
  const loaded = reactive({ state: 'loading', data: null, error: '' }) as Loaded<Data>
  void client
    .query(document, variables)
    .toPromise()
    .then((result) => {
      if (isValidationFailure(result.error)) loaded.state = 'hidden'
      else if (result.error) {
        loaded.state = 'error'
        loaded.error = describe(errorInfo(result.error), locale.errorText)
      } else {
        loaded.data = result.data ?? null
        loaded.state = 'ready'
      }
    })
  return loaded
}
