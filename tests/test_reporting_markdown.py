from brainexpr.reporting.markdown import markdown_to_html


def test_headings_lists_tables_and_escaping():
    text = "# Title\n\nSome **bold** <script> text\nwrapped.\n\n- one\n- two `x`\n\n| a | b |\n|---|---|\n| 1 | 2 |\n"
    out = markdown_to_html(text)
    assert "<h3>Title</h3>" in out
    assert "<p>Some <strong>bold</strong> &lt;script&gt; text wrapped.</p>" in out
    assert "<ul><li>one</li><li>two <code>x</code></li></ul>" in out
    assert "<table><thead><tr><th>a</th><th>b</th></tr></thead><tbody><tr><td>1</td><td>2</td></tr>" in out
