import SecretProviderClass
import Testing
import Yams

/// akvfs's YAML reader against Yams (libyaml), a full YAML implementation: for every document
/// both read, the trees must match; for documents Yams refuses, akvfs must refuse them too.
@Suite("YAML for objects: the same trees as a full YAML parser")
struct YAMLParserTests {
    /// A tree both parsers can be reduced to.
    indirect enum Shape: Equatable, CustomStringConvertible {
        case scalar(String)
        case sequence([Shape])
        case mapping([Shape], [Shape])

        var description: String {
            switch self {
            case .scalar(let text): return "\"\(text.debugDescription.dropFirst().dropLast())\""
            case .sequence(let items): return "[" + items.map(\.description).joined(separator: ", ") + "]"
            case .mapping(let keys, let values):
                return "{" + zip(keys, values).map { "\($0): \($1)" }.joined(separator: ", ") + "}"
            }
        }

        init(_ node: YAMLNode) {
            switch node {
            case .scalar(let scalar): self = .scalar(node.isNull ? "" : scalar.text)
            case .sequence(let items, _): self = .sequence(items.map(Shape.init))
            case .mapping(let entries, _):
                self = .mapping(entries.map { Shape($0.key) }, entries.map { Shape($0.value) })
            }
        }

        init(_ node: Node) {
            switch node {
            case .scalar(let scalar): self = .scalar(node.tag.rawValue == Tag.Name.null.rawValue ? "" : scalar.string)
            case .sequence(let sequence): self = .sequence(sequence.map(Shape.init))
            case .mapping(let mapping): self = .mapping(mapping.map { Shape($0.key) }, mapping.map { Shape($0.value) })
            case .alias: self = .scalar("<alias>")
            }
        }
    }

    static let documents: [String] = [
        // The Azure provider's examples and how people write them.
        "array:\n  - |\n    objectName: secret1\n    objectType: secret\n    objectVersion: \"\"\n  - |\n    objectName: key1\n    objectType: key\n",
        "array:\n- |\n  objectName: secret1\n  objectType: secret\n",
        "array:\n    - |\n      objectName: \"secret1\"\n      objectAlias: 'SECRET_1'\n      objectType: secret   # a comment\n",
        "# leading comment\n---\narray:\n  - |\n    objectName: a\n\n    objectType: secret\n...\n",
        "{\"array\": [\"objectName: a\\nobjectType: secret\\n\", \"objectName: b\\nobjectType: cert\"]}",
        "array: [\"objectName: a\\nobjectType: secret\"]",
        "array: []", "array:", "array: ~", "{}", "", "# only a comment\n", "array: null",
        "array:\r\n  - |\r\n    objectName: crlf\r\n    objectType: secret\r\n",
        // Block scalars: chomping, indentation indicators, folding, trailing blank lines.
        "a: |\n  one\n  two\n\n\nb: x\n", "a: |-\n  one\n  two\n", "a: |+\n  one\n\n\nb: x\n",
        "a: >\n  one\n  two\n\n  three\n    indented\n  four\n",
        "a: >-\n  folded\n  text\n", "a: |2\n    deeper\n  base\n", "- |\n  item\n- >\n  other\n  item\n",
        "a: |\n  # not a comment\n  x: y\n",
        "a: |\n\n  leading blank\n", "a: |\n", "a: >\n\n", "a: |  # comment\n  text\n",
        // Quoted scalars.
        "a: \"tab\\tnew\\nquote\\\" back\\\\ uni\\u00e9 x\\x41\"\n", "a: 'it''s'\n", "a: \"multi\n  line\n\n  text\"\n",
        "a: 'multi\n  line'\n",
        "a: \"joined\\\n  text\"\n", "\"quoted key\": v\n'single key': w\n", "a: \"\"\n", "a: ''\n",
        // Plain scalars.
        "a: http://example.com/x?y=1\n", "a: plain text # comment\n", "a: multi\n  line plain\n",
        "a: 1\nb: true\nc: 1.5\nd: ~\n",
        "a: -x\nb: x-\n", "a:b\n", "just text\n", "a: value:with:colons\n", "a: x #c\n  # comment line\nb: y\n",
        // Collections.
        "a:\n  b:\n    c: d\n  e: f\ng: h\n", "- a\n- b\n-\n- - c\n  - d\n", "- a: 1\n  b: 2\n- c: 3\n",
        "a:\n- 1\n- 2\nb: 3\n",
        "a: [1, 2, [3, 4], {x: y}]\n", "a: {b: c, d: [e, f]}\n", "a: [\n  one,\n  two,  # comment\n  three\n]\n",
        "a: [x: y, z]\n",
        "a: {b: , c: d}\n", "a: []\nb: {}\n", "- [a, b]\n- {c: d}\n", "a:\n  - b\n  -\n    c: d\n",
    ]

    @Test(arguments: documents)
    func sameTreeAsYams(document: String) throws {
        let expected = try Yams.compose(yaml: document).map(Shape.init)
        let actual = try YAMLParser.parse(document).map(Shape.init)
        #expect(actual == expected, "\(document.debugDescription)")
    }

    static let invalid: [String] = [
        "a: [unclosed", "a: {b: c", "a: \"unclosed", "a: 'unclosed", "a: b: c", "a:\n  b: c\n d: e\n", "a: \"\\q\"",
        "a:\n\t- b\n",
        "- a\nb: c\n", "a: b\n  c: d\n", "a: |x\n  text\n", "a: [b] c\n", "a: \"x\" y\n", "--- a\n--- b\n", "a: @x\n",
        "a: `x\n",
        "a: 1\na: 2\n", "aaay: [\"obje,rctName:ra a\\",
    ]

    @Test(arguments: invalid)
    func refusesWhatYamsRefuses(document: String) {
        #expect(throws: (any Error).self, "Yams reads \(document.debugDescription)") {
            try Yams.compose(yaml: document)
        }
        #expect(throws: YAMLError.self, "akvfs reads \(document.debugDescription)") { try YAMLParser.parse(document) }
    }

    @Test(arguments: ["a: &anchor x\nb: *anchor\n", "a: !!str 1\n", "? complex\n: key\n", "%YAML 1.2\n---\na: b\n"])
    func unsupportedFeaturesSaySo(document: String) throws {
        let error = try #require(throws: YAMLError.self) { try YAMLParser.parse(document) }
        #expect(error.description.contains("not supported"), "\(error)")
    }

    @Test func errorsPointAtTheLine() throws {
        let error = try #require(throws: YAMLError.self) { try YAMLParser.parse("array:\n  - |\n    a\n  - \"open\n") }
        #expect(error.line == 4 && error.column == 5, "\(error)")
        let deep = String(repeating: "[", count: 200)
        #expect(throws: YAMLError.self) { try YAMLParser.parse("a: " + deep) }
        let nested = (0..<100).map { String(repeating: " ", count: $0) + "k:" }.joined(separator: "\n")
        let tooDeep = try #require(throws: YAMLError.self) { try YAMLParser.parse(nested + " v\n") }
        #expect(tooDeep.problem.contains("levels deep"))
    }

    /// Random trees, written in block style with every scalar style, read back identically by both.
    @Test func randomTreesReadTheSameAsYams() throws {
        var generator = SplitMix(seed: 0x5eed)
        for round in 0..<400 {
            let root = Tree.map([("root", Self.tree(&generator, depth: 0)), ("after", .text("end"))])
            let document = Self.render(root, indent: 0, generator: &generator)
            let expected = try Yams.compose(yaml: document).map(Shape.init)
            let actual = try YAMLParser.parse(document).map(Shape.init)
            #expect(actual == expected, "round \(round): \(document.debugDescription)")
            if actual != expected { break }
        }
    }

    struct SplitMix: RandomNumberGenerator {
        var state: UInt64
        init(seed: UInt64) { state = seed }
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    enum Tree {
        case text(String)
        case list([Tree])
        case map([(String, Tree)])
    }

    static let texts = [
        "secret1", "objectName: x", "a # b", "two\nlines\n", "no newline\nat end", "  leading", "quote\"d", "it's",
        "tab\there", "",
        "x: y\nz: w\n", "- item", "#hash", "ünïcödé", "trailing ", "123", "true", "null", "~", "{braces}", "[brackets]",
    ]

    static func tree(_ generator: inout SplitMix, depth: Int) -> Tree {
        let roll = depth >= 3 ? 0 : Int.random(in: 0..<3, using: &generator)
        switch roll {
        case 1:
            return .list((0..<Int.random(in: 1...3, using: &generator)).map { _ in tree(&generator, depth: depth + 1) })
        case 2:
            return .map(
                (0..<Int.random(in: 1...3, using: &generator)).map { index in
                    ("key\(index)", tree(&generator, depth: depth + 1))
                })
        default: return .text(texts.randomElement(using: &generator)!)
        }
    }

    static func render(_ tree: Tree, indent: Int, generator: inout SplitMix) -> String {
        let pad = String(repeating: " ", count: indent)
        switch tree {
        case .text(let text): return scalar(text, indent: indent, generator: &generator) + "\n"
        case .list(let items):
            return items.map { item in
                if case .text = item { return pad + "- " + render(item, indent: indent + 2, generator: &generator) }
                return pad + "-\n" + render(item, indent: indent + 2, generator: &generator)
            }.joined()
        case .map(let entries):
            return entries.map { key, value in
                if case .text = value {
                    return pad + key + ": " + render(value, indent: indent + 2, generator: &generator)
                }
                return pad + key + ":\n" + render(value, indent: indent + 2, generator: &generator)
            }.joined()
        }
    }

    /// The scalar in a style that can hold it, chosen at random among those.
    static func scalar(_ text: String, indent: Int, generator: inout SplitMix) -> String {
        var styles = ["double"]
        let special = ["true", "null", "~", "123", ""]
        if !text.contains("'") && !text.contains("\n") && !text.contains("\t") && !text.hasPrefix(" ")
            && !text.hasSuffix(" ")
        {
            styles.append("single")
        }
        if !text.isEmpty, !special.contains(text), !text.contains("\n"), !text.contains(": "), !text.contains(" #"),
            !text.contains("\t"),
            !text.hasPrefix(" "), !text.hasSuffix(" "), !"#-{[\"'".contains(text.first!)
        {
            styles.append("plain")
        }
        if !text.isEmpty, !text.hasPrefix(" "), !text.hasSuffix(" "), !text.hasSuffix("\n\n"), !text.contains("\t") {
            styles.append("literal")
        }
        switch styles.randomElement(using: &generator)! {
        case "plain": return text
        case "single": return "'" + text + "'"
        case "literal":
            let pad = String(repeating: " ", count: indent)
            let body = text.hasSuffix("\n") ? String(text.dropLast()) : text
            return (text.hasSuffix("\n") ? "|" : "|-") + "\n"
                + body.split(separator: "\n", omittingEmptySubsequences: false).map { pad + $0 }.joined(separator: "\n")
        default:
            var escaped = ""
            for character in text {
                switch character {
                case "\"": escaped += "\\\""
                case "\\": escaped += "\\\\"
                case "\n": escaped += "\\n"
                case "\t": escaped += "\\t"
                default: escaped.append(character)
                }
            }
            return "\"" + escaped + "\""
        }
    }
}
