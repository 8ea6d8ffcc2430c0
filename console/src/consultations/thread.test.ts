import { describe, expect, it } from 'vitest'
import { socketUrl } from '@/api/live'
import { isOwn, mergeMessages } from './thread'

describe('a conversation thread', () => {
  it('keeps each message once, oldest first', () => {
    const a = { id: 'a', sentAt: '2026-12-01T08:00:00Z', text: 'first' }
    const b = { id: 'b', sentAt: '2026-12-01T08:05:00Z', text: 'second' }
    const c = { id: 'c', sentAt: '2026-12-01T08:10:00Z', text: 'third' }
    // the API answers newest first; the send's own answer and the subscription bring the same message twice
    const thread = mergeMessages([], [c, b, a])
    expect(thread.map((m) => m.id)).toEqual(['a', 'b', 'c'])
    const again = mergeMessages(thread, [{ ...c, text: 'third (moderated)' }])
    expect(again.map((m) => m.text)).toEqual(['first', 'second', 'third (moderated)'])
  })
  it("tells the viewer's own messages", () => {
    const me = { id: 'u1', displayName: '王医生' }
    expect(isOwn({ senderId: 'u1' }, me)).toBe(true)
    expect(isOwn({ senderId: 'u2', senderName: '王医生' }, me)).toBe(false)
    expect(isOwn({ senderId: null, senderName: '王医生' }, me)).toBe(true)
    expect(isOwn({ senderId: 'u1' }, null)).toBe(false)
  })
  it('opens the websocket beside the page', () => {
    expect(socketUrl({ protocol: 'http:', host: '10.0.0.5:8000' })).toBe('ws://10.0.0.5:8000/graphql')
    expect(socketUrl({ protocol: 'https:', host: 'fu.example.org' })).toBe('wss://fu.example.org/graphql')
  })
})
