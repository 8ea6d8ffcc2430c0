// A conversation's messages as the page shows them: oldest first, each once (a message can arrive both from the
// subscription and from the send's own answer, or be loaded again).

export interface MessageLike {
  id: string
  sentAt: string
}

/** Merge messages into a thread: each id once (the newer copy wins), oldest first. */
export function mergeMessages<T extends MessageLike>(thread: readonly T[], incoming: readonly T[]): T[] {
  const byId = new Map<string, T>()
  for (const m of thread) byId.set(m.id, m)
  for (const m of incoming) byId.set(m.id, m)
  return [...byId.values()].sort((a, b) => a.sentAt.localeCompare(b.sentAt) || a.id.localeCompare(b.id))
}

/** Whether a message is the viewer's own (drawn on the right). */
export function isOwn(message: { senderId?: string | null; senderName?: string | null }, me: { id: string; displayName: string } | null): boolean {
  if (!me) return false
  return message.senderId ? message.senderId === me.id : message.senderName === me.displayName
}
