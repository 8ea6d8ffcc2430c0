import { describe, expect, it } from 'vitest'
import { renderPreview } from './markdown'

describe('renderPreview', () => {
  it('renders headings, paragraphs, lists, bold, italic, code and https links', () => {
    const html = renderPreview('## 饮食要点\n\n术后*一周*内：\n\n- 多喝水\n- **多吃蔬菜**\n\n1. 第一\n2. 第二\n\n见 [指南](https://example.org/a) 与 `code`')
    expect(html).toBe(
      [
        '<h2>饮食要点</h2>',
        '<p>术后<em>一周</em>内：</p>',
        '<ul><li>多喝水</li><li><strong>多吃蔬菜</strong></li></ul>',
        '<ol><li>第一</li><li>第二</li></ol>',
        '<p>见 <a href="https://example.org/a" rel="noopener noreferrer nofollow">指南</a> 与 <code>code</code></p>',
      ].join('\n'),
    )
  })

  it('never lets typed HTML or a script link through, and loads no image', () => {
    const html = renderPreview('<script>alert(1)</script>\n\n[x](javascript:alert(1)) ![pixel](https://tracker.example/p.gif) <img src=x onerror=alert(1)>')
    expect(html).not.toContain('<script')
    expect(html).not.toContain('<img')
    expect(html).not.toContain('href="javascript')
    expect(html).toContain('&lt;script&gt;')
    expect(html).toContain('pixel')
  })

  it('keeps fenced code as it is, escaped', () => {
    expect(renderPreview('```\n**not bold** <b>\n```')).toBe('<pre><code>**not bold** &lt;b&gt;</code></pre>')
  })
})
