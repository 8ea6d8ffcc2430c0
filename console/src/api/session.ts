// The tokens of this browser tab's session. Kept in sessionStorage: a reload keeps the session, closing the tab
// ends it, and another tab logs in on its own (a refresh token works once: two tabs refreshing one token would
// end the session).
export interface Tokens {
  accessToken: string
  refreshToken: string
  expiresAt: number // epoch milliseconds
}

const KEY = 'followup.session'

export function loadTokens(storage: Storage = sessionStorage): Tokens | null {
  try {
    const raw = storage.getItem(KEY)
    if (!raw) return null
    const parsed = JSON.parse(raw) as Tokens
    return parsed.accessToken && parsed.refreshToken ? parsed : null
  } catch {
    return null
  }
}

export function saveTokens(tokens: Tokens | null, storage: Storage = sessionStorage): void {
  if (tokens) storage.setItem(KEY, JSON.stringify(tokens))
  else storage.removeItem(KEY)
}

export function tokensFrom(payload: { accessToken: string; refreshToken: string; expiresIn: number }, now = Date.now()): Tokens {
  return { accessToken: payload.accessToken, refreshToken: payload.refreshToken, expiresAt: now + payload.expiresIn * 1000 }
}

/** Refresh ahead of time: a minute before the access token ends (or at once when it has). */
export function needsRefresh(tokens: Tokens | null, now = Date.now()): boolean {
  return !!tokens && tokens.expiresAt - now < 60_000
}
