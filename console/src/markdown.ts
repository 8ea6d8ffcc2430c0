// A live preview of an article's Markdown while it is typed: a small subset (headings, paragraphs, lists, quotes,
// fenced code, bold, italic, inline code, links), every character of the source escaped first, so nothing typed
// becomes markup of its own (raw HTML shows as text; the server drops it). Images show as their alt text: the
// page loads nothing from elsewhere. What patients read is the server's rendering, shown after a save.

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }
const escape = (text: string) => text.replace(/[&<>"']/g, (c) => ESCAPES[c] ?? c)

/** Inline markup of one escaped line: code spans first (their content left alone), then links, bold, italic. */
function inline(escaped: string): string {
  return escaped
    .split(/(`[^`]+`)/)
    .map((part) => {
      if (/^`[^`]+`$/.test(part)) return `<code>${part.slice(1, -1)}</code>`
      return part
        .replace(/!\[([^\]]*)\]\([^)\s]*\)/g, '$1')
        .replace(/\[([^\]]+)\]\((https?:\/\/[^)\s]+)\)/g, '<a href="$2" rel="noopener noreferrer nofollow">$1</a>')
        .replace(/\*\*([^*]+)\*\*|__([^_]+)__/g, (_, a: string | undefined, b: string | undefined) => `<strong>${a ?? b}</strong>`)
        .replace(/\*([^*]+)\*|_([^_]+)_/g, (_, a: string | undefined, b: string | undefined) => `<em>${a ?? b}</em>`)
    })
    .join('')
}

export function renderPreview(source: string): string {
  const out: string[] = []
  const lines = source.replace(/\r\n?/g, '\n').split('\n')
  let paragraph: string[] = []
  let list: { tag: 'ul' | 'ol'; items: string[] } | null = null
  const flush = () => {
    if (paragraph.length) out.push(`<p>${paragraph.map((l) => inline(escape(l.trim()))).join('<br>')}</p>`)
    paragraph = []
    if (list) out.push(`<${list.tag}>${list.items.map((i) => `<li>${inline(escape(i))}</li>`).join('')}</${list.tag}>`)
    list = null
  }
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] ?? ''
    if (/^\s*```/.test(line)) {
      flush()
      const code: string[] = []
      while (++i < lines.length && !/^\s*```/.test(lines[i] ?? '')) code.push(lines[i] ?? '')
      out.push(`<pre><code>${escape(code.join('\n'))}</code></pre>`)
      continue
    }
    const heading = /^(#{1,6})\s+(.*)$/.exec(line)
    const bullet = /^\s*[-*+]\s+(.*)$/.exec(line)
    const numbered = /^\s*\d+[.)]\s+(.*)$/.exec(line)
    const quote = /^>\s?(.*)$/.exec(line)
    if (heading) {
      flush()
      const level = heading[1]?.length ?? 1
      out.push(`<h${level}>${inline(escape(heading[2] ?? ''))}</h${level}>`)
    } else if (bullet || numbered) {
      const tag = bullet ? 'ul' : 'ol'
      if (paragraph.length || (list && list.tag !== tag)) flush()
      list ??= { tag, items: [] }
      list.items.push((bullet ?? numbered)?.[1] ?? '')
    } else if (quote) {
      flush()
      out.push(`<blockquote><p>${inline(escape(quote[1] ?? ''))}</p></blockquote>`)
    } else if (!line.trim()) {
      flush()
    } else {
      if (list) flush()
      paragraph.push(line)
    }
  }
  flush()
  return out.join('\n')
}
