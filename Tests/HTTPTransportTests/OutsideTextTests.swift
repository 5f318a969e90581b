import HTTPTransport
import Testing

@Suite("Text from outside, escaped for logs and messages")
struct OutsideTextTests {
    @Test(arguments: [
        ("plain text, unchanged: é ✓", "plain text, unchanged: é ✓"),
        ("line\nforged", #"line\nforged"#), ("a\rb\tc", #"a\rb\tc"#), ("\u{1B}[2Jclear", #"\x1b[2Jclear"#),
        ("nul\u{0}del\u{7F}", #"nul\x00del\x7f"#), ("c1\u{85}next", #"c1\x85next"#),
        ("separator\u{2028}here", #"separator\u{2028}here"#),
    ])
    func escapes(text: String, expected: String) {
        #expect(OutsideText.escaped(text) == expected)
    }

    @Test func quotingEscapesQuotesAndBackslashesToo() {
        #expect(OutsideText.escaped(#"a "b" \ c"#) == #"a "b" \ c"#)
        #expect(OutsideText.escaped(#"a "b" \ c"#, quoting: true) == #"a \"b\" \\ c"#)
    }

    @Test func cutsToTheLimit() {
        #expect(OutsideText.escaped(String(repeating: "M\n", count: 10_000), limit: 4) == #"M\nM\n…"#)
        #expect(OutsideText.escaped("short", limit: 5) == "short")
    }
}
