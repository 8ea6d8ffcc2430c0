import { describe, expect, it } from 'vitest'
import { answerError, multipartBody } from './upload'

describe('multipart uploads', () => {
  it('follows the GraphQL multipart request convention', async () => {
    const body = multipartBody('mutation M($file: Upload!, $dryRun: Boolean!) { x }', { dryRun: true }, 'file', new Blob(['a,b\n']), 'plan.csv')
    const operations = JSON.parse(String(body.get('operations')))
    expect(operations.variables).toEqual({ dryRun: true, file: null })
    expect(operations.query).toContain('mutation M')
    expect(JSON.parse(String(body.get('map')))).toEqual({ '0': ['variables.file'] })
    const file = body.get('0') as File
    expect(file.name).toBe('plan.csv')
    expect(await file.text()).toBe('a,b\n')
  })
  it("reads the answer's first error", () => {
    expect(answerError({ errors: [{ message: 'bad', extensions: { code: 'BAD_USER_INPUT', field: 'file' } }] }, 200)).toEqual({
      code: 'BAD_USER_INPUT',
      message: 'bad',
      field: 'file',
    })
    expect(answerError({}, 200)).toBeNull()
    expect(answerError({}, 413)?.code).toBe('INTERNAL')
  })
})
