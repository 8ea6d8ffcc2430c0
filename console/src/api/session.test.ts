import { describe, expect, it } from 'vitest'
import { describe as describeError, errorInfo } from './errors'
import { loadTokens, needsRefresh, saveTokens, tokensFrom } from './session'
import { CombinedError } from '@urql/core'
import { GraphQLError } from 'graphql'

describe('tokens', () => {
  it('live in sessionStorage and are refreshed a minute before they end', () => {
    const tokens = tokensFrom({ accessToken: 'a', refreshToken: 'r', expiresIn: 900 }, 1_000)
    expect(tokens.expiresAt).toBe(901_000)
    saveTokens(tokens)
    expect(loadTokens()).toEqual(tokens)
    expect(needsRefresh(tokens, 1_000)).toBe(false)
    expect(needsRefresh(tokens, 850_000)).toBe(true)
    saveTokens(null)
    expect(loadTokens()).toBeNull()
    expect(needsRefresh(null)).toBe(false)
  })
})

describe('errors', () => {
  it("say the code's meaning, the message and the field of a BAD_USER_INPUT", () => {
    const error = new CombinedError({
      graphQLErrors: [new GraphQLError('Pain score must be 0-10', { extensions: { code: 'BAD_USER_INPUT', field: 'painScore' } })],
    })
    const info = errorInfo(error)
    expect(info).toMatchObject({ code: 'BAD_USER_INPUT', field: 'painScore' })
    expect(describeError(info, () => 'Check your input')).toBe('Check your input: Pain score must be 0-10 (painScore)')
  })

  it('mark a login that needs the one-time code', () => {
    const error = new CombinedError({
      graphQLErrors: [new GraphQLError('A one-time code is required', { extensions: { code: 'UNAUTHENTICATED', totpRequired: true } })],
    })
    expect(errorInfo(error).totpRequired).toBe(true)
  })
})
