// The sidebar folds to its icons on tablets and narrower (a 1024 px iPad in landscape included), and unfolds on
// wider screens; the header's button toggles it either way until the width crosses the line again.
export const FOLD_BELOW = 1100

export function shouldFold(width: number): boolean {
  return width < FOLD_BELOW
}

/** Follow the window's width: `onChange(folded)` each time it crosses the line; the returned function stops. */
export function watchFold(onChange: (folded: boolean) => void, media: (query: string) => MediaQueryList = window.matchMedia.bind(window)): () => void {
  const query = media(`(max-width: ${FOLD_BELOW - 0.02}px)`)
  const listener = (event: MediaQueryListEvent) => onChange(event.matches)
  query.addEventListener('change', listener)
  return () => query.removeEventListener('change', listener)
}
