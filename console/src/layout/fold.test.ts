import { describe, expect, it, vi } from 'vitest'
import { shouldFold, watchFold } from './fold'

describe('the folding sidebar', () => {
  it('folds on a 1024 px tablet, not on a laptop', () => {
    expect(shouldFold(1024)).toBe(true)
    expect(shouldFold(768)).toBe(true)
    expect(shouldFold(1280)).toBe(false)
  })
  it('follows the width as it crosses the line', () => {
    let listener: ((e: { matches: boolean }) => void) | undefined
    const query = {
      addEventListener: (_: string, l: (e: { matches: boolean }) => void) => (listener = l),
      removeEventListener: vi.fn(),
    }
    const changes: boolean[] = []
    const stop = watchFold((folded) => changes.push(folded), () => query as unknown as MediaQueryList)
    listener?.({ matches: true })
    listener?.({ matches: false })
    expect(changes).toEqual([true, false])
    stop()
    expect(query.removeEventListener).toHaveBeenCalled()
  })
})
