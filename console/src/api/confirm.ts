import { ElMessage, ElMessageBox } from 'element-plus'
import type { AnyVariables, DocumentInput } from '@urql/core'
import { client } from './client'
import { describe, errorInfo } from './errors'
import { useLocale } from '@/stores/locale'

/**
 * A destructive or audited action: asked first (with a reason when `reason` is set: at least `minLength`
 * characters), then run; the outcome as a message. True when it ran.
 */
export async function confirmAndRun<Data, Variables extends AnyVariables>(options: {
  question: string
  document: DocumentInput<Data, Variables>
  variables: (reason: string) => Variables
  reason?: boolean
  minLength?: number
}): Promise<boolean> {
  const locale = useLocale()
  const t = locale.t
  let reason = ''
  try {
    if (options.reason) {
      const min = options.minLength ?? 1
      const answer = await ElMessageBox.prompt(options.question, t('confirm'), {
        confirmButtonText: t('confirm'),
        cancelButtonText: t('cancel'),
        inputPlaceholder: t('reason'),
        inputValidator: (value: string) => (value?.trim().length ?? 0) >= min || t('reasonRequired'),
        type: 'warning',
      })
      reason = answer.value.trim()
    } else {
      await ElMessageBox.confirm(options.question, t('confirm'), {
        confirmButtonText: t('confirm'),
        cancelButtonText: t('cancel'),
        type: 'warning',
      })
    }
  } catch {
    return false // cancelled
  }
  const result = await client.mutation(options.document, options.variables(reason)).toPromise()
  if (result.error) {
    ElMessage.error(describe(errorInfo(result.error), locale.errorText))
    return false
  }
  ElMessage.success(t('saved'))
  return true
}
