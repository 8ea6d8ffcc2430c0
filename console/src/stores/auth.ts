import { defineStore } from 'pinia'
import { client, currentTokens, setTokens } from '@/api/client'
import { errorInfo, type ErrorInfo } from '@/api/errors'
import { tokensFrom } from '@/api/session'
import { ChangePasswordDocument, LoginDocument, LogoutDocument, MeDocument, type MeQuery } from '@/gql/graphql'

type Me = MeQuery['me']

export const useAuth = defineStore('auth', {
  state: () => ({
    loggedIn: currentTokens() !== null,
    me: null as Me | null,
    mustChangePassword: false,
  }),
  getters: {
    roles: (state): string[] => state.me?.roles.map((role) => role.key) ?? [],
  },
  actions: {
    /** Log in; `null` on success, else what went wrong (`totpRequired` asks for the one-time code). */
    async login(username: string, password: string, totp?: string): Promise<ErrorInfo | null> {
      const result = await client.mutation(LoginDocument, { username, password, totp: totp || null }).toPromise()
      if (result.error || !result.data) return result.error ? errorInfo(result.error) : { code: 'INTERNAL', message: '' }
      const payload = result.data.login
      setTokens(tokensFrom(payload))
      this.loggedIn = true
      this.mustChangePassword = payload.mustChangePassword
      this.me = null
      return null
    },
    async loadMe(): Promise<ErrorInfo | null> {
      const result = await client.query(MeDocument, {}).toPromise()
      if (result.error || !result.data) return result.error ? errorInfo(result.error) : { code: 'INTERNAL', message: '' }
      this.me = result.data.me
      this.mustChangePassword = result.data.me.mustChangePassword
      return null
    },
    async changePassword(oldPassword: string, newPassword: string): Promise<ErrorInfo | null> {
      const result = await client.mutation(ChangePasswordDocument, { oldPassword, newPassword }).toPromise()
      if (result.error) return errorInfo(result.error)
      this.mustChangePassword = false
      this.me = null
      return null
    },
    async logout(): Promise<void> {
      if (currentTokens()) await client.mutation(LogoutDocument, {}).toPromise()
      this.forget()
    },
    /** The session is gone (logged out, refused refresh): forget it locally. */
    forget(): void {
      setTokens(null)
      this.loggedIn = false
      this.me = null
      this.mustChangePassword = false
    },
  },
})
