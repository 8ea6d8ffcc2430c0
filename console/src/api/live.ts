import { print, type DocumentNode } from 'graphql'
import { createClient, type Client } from 'graphql-ws'
import { client as http, currentTokens } from './client'
import { needsRefresh } from './session'
import { MeDocument } from '@/gql/graphql'

/** The API's websocket: the same /graphql path, ws:// beside http:// (wss:// beside https://). */
export function socketUrl(location: { protocol: string; host: string }): string {
  return `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/graphql`
}

let socket: Client | null = null

/**
 * One graphql-transport-ws connection per tab, opened on the first subscription and closed when the last one
 * ends (lazy). The access token goes in connection_init; a reconnection sends the token current then (refreshed
 * first over HTTP when it is about to end).
 */
function live(): Client {
  socket ??= createClient({
    url: socketUrl(window.location),
    lazy: true,
    retryAttempts: 5,
    connectionParams: async () => {
      if (needsRefresh(currentTokens())) await http.query(MeDocument, {}).toPromise()
      const tokens = currentTokens()
      return tokens ? { authorization: `Bearer ${tokens.accessToken}` } : {}
    },
  })
  return socket
}

/** Follow a subscription; the returned function stops it. Errors (refused, closed for good) go to `onError`. */
export function subscribe<Data>(
  document: DocumentNode,
  variables: Record<string, unknown>,
  onData: (data: Data) => void,
  onError: (message: string) => void,
  onOpen?: () => void,
): () => void {
  const ws = live()
  const offOpen = onOpen ? ws.on('connected', onOpen) : () => {}
  const stop = ws.subscribe<Data>(
    { query: print(document), variables },
    {
      next: (result) => {
        if (result.errors?.length) onError(result.errors[0]!.message)
        else if (result.data) onData(result.data)
      },
      error: (problem) => onError(problem instanceof Error ? problem.message : 'closed'),
      complete: () => {},
    },
  )
  return () => {
    offOpen()
    stop()
  }
}

/** Close the socket (logout): the next subscription opens a new one with the next user's token. */
export function closeLive(): void {
  void socket?.dispose()
  socket = null
}
