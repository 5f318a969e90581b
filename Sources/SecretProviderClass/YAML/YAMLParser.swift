/// Reads one YAML document of the kind a SecretProviderClass holds in `objects`: block mappings
/// and sequences, plain, quoted and block (`|`, `>`) scalars, flow collections (`[…]`, `{…}`)
/// and comments. Anchors, aliases, tags, complex keys and directives are refused with an error
/// that says so (docs/secretproviderclass.md, Stricter: the objects YAML). Works on UTF-8 bytes: every
/// indicator is ASCII.
public struct YAMLParser {
    /// Deeper nesting than this is refused rather than recursed into.
    public static let maxDepth = 64

    private var lines: [[UInt8]]
    private var index = 0
    private var depth = 0

    /// The document's root, or nil for an empty document (only comments, blanks or `---`).
    public static func parse(_ text: String) throws(YAMLError) -> YAMLNode? {
        var parser = YAMLParser(text)
        return try parser.document()
    }

    private init(_ text: String) {
        var bytes = Array(text.utf8)
        if bytes.starts(with: [0xEF, 0xBB, 0xBF]) { bytes.removeFirst(3) }
        lines = bytes.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).map { line in
            line.last == UInt8(ascii: "\r") ? Array(line.dropLast()) : Array(line)
        }
    }

    // MARK: Document

    private mutating func document() throws(YAMLError) -> YAMLNode? {
        if let first = try nextContentLine(), lines[first].starts(with: Array("%".utf8)) {
            throw YAMLError(
                line: first + 1, column: 1, problem: "YAML directives (%) are not supported; remove the line")
        }
        var rootIndent = -1
        if let first = try nextContentLine(), isMarker(first, "---") {
            lines[first].replaceSubrange(0..<3, with: [UInt8](repeating: space, count: 3))
            if indent(of: first) == nil { index += 1 } else { rootIndent = 0 }
        }
        var root: YAMLNode?
        if let first = try nextContentLine() {
            if isMarker(first, "---") || isMarker(first, "...") {
                root = nil
            } else if let start = indent(of: first) {
                root = try node(at: start, scalarParent: rootIndent)
            }
        }
        if let next = try nextContentLine() {
            if isMarker(next, "...") {
                index = next + 1
                if let after = try nextContentLine() {
                    throw YAMLError(line: after + 1, column: 1, problem: "content after the end of the document (...)")
                }
            } else if isMarker(next, "---") {
                throw YAMLError(
                    line: next + 1, column: 1, problem: "a second document (---): objects holds one YAML document")
            } else {
                throw YAMLError(
                    line: next + 1, column: (indent(of: next) ?? 0) + 1,
                    problem:
                        "did not find expected key: this line is indented less than the node it follows, or more than its siblings"
                )
            }
        }
        return root
    }

    // MARK: Block structure

    /// The node whose first character is at `column` of the current line. A scalar found there
    /// belongs to a parent indented `scalarParent`: its continuation lines must be deeper.
    private mutating func node(at column: Int, scalarParent: Int) throws(YAMLError) -> YAMLNode {
        depth += 1
        defer { depth -= 1 }
        guard depth <= Self.maxDepth else {
            throw YAMLError(
                line: index + 1, column: column + 1, problem: "nested more than \(Self.maxDepth) levels deep")
        }
        if isSequenceEntry(index, column) { return try sequence(at: column) }
        if try mappingKey(index, column) != nil { return try mapping(at: column) }
        return try scalarOrFlow(index, column, parentIndent: scalarParent)
    }

    /// The block under a parent indented `parent`, or nil when none follows. A mapping's value may
    /// be a sequence at the key's own indentation (`key:` then `- item`).
    private mutating func block(under parent: Int, sequenceAtParent: Bool) throws(YAMLError) -> YAMLNode? {
        guard let next = try nextContentLine(), !isMarker(next, "---"), !isMarker(next, "..."),
            let column = indent(of: next)
        else {
            return nil
        }
        if column > parent { return try node(at: column, scalarParent: parent) }
        if sequenceAtParent, column == parent, isSequenceEntry(next, column) { return try sequence(at: column) }
        return nil
    }

    private mutating func sequence(at column: Int) throws(YAMLError) -> YAMLNode {
        let startLine = index + 1
        var items: [YAMLNode] = []
        while let next = try nextContentLine(), !isDocumentMarker(next), indent(of: next) == column,
            isSequenceEntry(next, column)
        {
            let itemLine = next + 1
            if let contentStart = firstContent(next, from: column + 1) {
                // "- value": the value is a node that starts further right on the same line.
                lines[next][column] = space
                items.append(try node(at: contentStart, scalarParent: column))
            } else {
                index = next + 1
                items.append(
                    try block(under: column, sequenceAtParent: false)
                        ?? .scalar(YAMLScalar("", style: .plain, line: itemLine)))
            }
        }
        try checkNoDeeperLine(than: column, after: "a list")
        return .sequence(items, line: startLine)
    }

    private mutating func mapping(at column: Int) throws(YAMLError) -> YAMLNode {
        let startLine = index + 1
        var entries: [YAMLMappingEntry] = []
        var seen: [String: Int] = [:]
        while let next = try nextContentLine(), !isDocumentMarker(next), indent(of: next) == column {
            if isSequenceEntry(next, column) {
                throw YAMLError(
                    line: next + 1, column: column + 1,
                    problem:
                        "did not find expected key: a list item (-) among the keys of a map; indent it under its key")
            }
            guard let (key, valueStart) = try mappingKey(next, column) else {
                throw YAMLError(
                    line: next + 1, column: column + 1, problem: "could not find expected ':' after this key")
            }
            if case .scalar(let scalar) = key {
                if let earlier = seen[scalar.text] {
                    throw YAMLError(
                        line: next + 1, column: nil,
                        problem: "mapping key \"\(scalar.text)\" already defined at line \(earlier)")
                }
                seen[scalar.text] = next + 1
            }
            let value: YAMLNode
            if let valueStart {
                value = try scalarOrFlow(next, valueStart, parentIndent: column)
            } else {
                index = next + 1
                value =
                    try block(under: column, sequenceAtParent: true)
                    ?? .scalar(YAMLScalar("", style: .plain, line: next + 1))
            }
            entries.append(YAMLMappingEntry(key: key, value: value))
        }
        try checkNoDeeperLine(than: column, after: "a map")
        return .mapping(entries, line: startLine)
    }

    private mutating func checkNoDeeperLine(than column: Int, after what: String) throws(YAMLError) {
        guard let next = try nextContentLine(), !isDocumentMarker(next), let deeper = indent(of: next), deeper > column
        else { return }
        throw YAMLError(
            line: next + 1, column: deeper + 1,
            problem:
                "this line is indented more than the entries of \(what) above it; align it with them or nest it under a key"
        )
    }

    /// A `key:` at `column` of `line`: the key and where its value starts on the same line (nil
    /// when the value, if any, is on the lines below). Nil when the line is not a map entry.
    private func mappingKey(_ line: Int, _ column: Int) throws(YAMLError) -> (YAMLNode, Int?)? {
        let bytes = lines[line]
        let first = bytes[column]
        var keyEnd: Int
        let key: YAMLNode
        switch first {
        case UInt8(ascii: "\""), UInt8(ascii: "'"):
            guard let quoted = try? quotedScalar(line, column, parentIndent: -1), quoted.endLine == line else {
                return nil
            }
            keyEnd = quoted.endColumn
            while keyEnd < bytes.count, isBlank(bytes[keyEnd]) { keyEnd += 1 }
            guard keyEnd < bytes.count, bytes[keyEnd] == colon, keyEnd + 1 == bytes.count || isBlank(bytes[keyEnd + 1])
            else { return nil }
            key = .scalar(quoted.scalar)
        case UInt8(ascii: "["), UInt8(ascii: "{"), UInt8(ascii: "|"), UInt8(ascii: ">"), UInt8(ascii: "#"):
            return nil
        case UInt8(ascii: "?") where column + 1 == bytes.count || isBlank(bytes[column + 1]):
            throw YAMLError(
                line: line + 1, column: column + 1,
                problem: "complex mapping keys (?) are not supported; write key: value")
        default:
            var end: Int?
            for position in column..<bytes.count {
                if bytes[position] == hash, position > column, isBlank(bytes[position - 1]) { return nil }
                if bytes[position] == colon, position + 1 == bytes.count || isBlank(bytes[position + 1]) {
                    end = position
                    break
                }
            }
            guard let end else { return nil }
            try refuseUnsupportedIndicator(line, column)
            var text = Array(bytes[column..<end])
            while let last = text.last, isBlank(last) { text.removeLast() }
            key = .scalar(YAMLScalar(String(decoding: text, as: UTF8.self), style: .plain, line: line + 1))
            keyEnd = end
        }
        return (key, firstContent(line, from: keyEnd + 1))
    }

    // MARK: Scalars and flow collections

    private mutating func scalarOrFlow(_ line: Int, _ column: Int, parentIndent: Int) throws(YAMLError) -> YAMLNode {
        let first = lines[line][column]
        switch first {
        case UInt8(ascii: "|"), UInt8(ascii: ">"):
            return .scalar(try blockScalar(line, column, parentIndent: parentIndent))
        case UInt8(ascii: "\""), UInt8(ascii: "'"):
            let quoted = try quotedScalar(line, column, parentIndent: parentIndent)
            try expectLineEnd(quoted.endLine, quoted.endColumn, after: "the quoted string")
            index = quoted.endLine + 1
            return .scalar(quoted.scalar)
        case UInt8(ascii: "["), UInt8(ascii: "{"):
            var cursor = Cursor(line: line, column: column)
            let node = try flowNode(&cursor, depth: depth + 1)
            try expectLineEnd(cursor.line, cursor.column, after: "the flow collection")
            index = cursor.line + 1
            return node
        case UInt8(ascii: "-") where isSequenceEntry(line, column):
            throw YAMLError(
                line: line + 1, column: column + 1,
                problem:
                    "block sequence entries are not allowed in this context: start the list on the next line, indented")
        default:
            try refuseUnsupportedIndicator(line, column)
            return .scalar(try plainScalar(line, column, parentIndent: parentIndent))
        }
    }

    private func refuseUnsupportedIndicator(_ line: Int, _ column: Int) throws(YAMLError) {
        switch lines[line][column] {
        case UInt8(ascii: "&"), UInt8(ascii: "*"), UInt8(ascii: "!"):
            throw YAMLError(
                line: line + 1, column: column + 1,
                problem:
                    "anchors (&), aliases (*) and tags (!) are not supported in objects; write the value out in full")
        case UInt8(ascii: "@"), UInt8(ascii: "`"), UInt8(ascii: "%"), UInt8(ascii: ","), UInt8(ascii: "]"),
            UInt8(ascii: "}"):
            throw YAMLError(
                line: line + 1, column: column + 1,
                problem: "found character that cannot start any token; quote the value")
        default:
            return
        }
    }

    /// A plain scalar: the rest of the line up to a comment, folded with deeper lines below it.
    private mutating func plainScalar(_ line: Int, _ column: Int, parentIndent: Int) throws(YAMLError) -> YAMLScalar {
        var text = ""
        var current = line
        var start = column
        var pendingBreaks = 0
        while true {
            let (piece, hadComment) = try plainLine(current, start)
            if !text.isEmpty { text += pendingBreaks == 0 ? " " : String(repeating: "\n", count: pendingBreaks) }
            text += piece
            index = current + 1
            if hadComment { break }
            // Continuation: the next non-empty line, if deeper than the parent and not a comment.
            var next = current + 1
            pendingBreaks = 0
            while next < lines.count, lines[next].allSatisfy(isBlank) {
                pendingBreaks += 1
                next += 1
            }
            guard next < lines.count, let nextIndent = indent(of: next), nextIndent > parentIndent,
                lines[next][nextIndent] != hash,
                !isMarker(next, "---"), !isMarker(next, "...")
            else { break }
            current = next
            start = nextIndent
        }
        return YAMLScalar(text, style: .plain, line: line + 1)
    }

    private func plainLine(_ line: Int, _ column: Int) throws(YAMLError) -> (String, Bool) {
        let bytes = lines[line]
        var end = bytes.count
        var hadComment = false
        for position in column..<bytes.count {
            if bytes[position] == hash, position > column, isBlank(bytes[position - 1]) {
                end = position
                hadComment = true
                break
            }
            if bytes[position] == colon, position + 1 == bytes.count || isBlank(bytes[position + 1]) {
                throw YAMLError(
                    line: line + 1, column: position + 1,
                    problem: "mapping values are not allowed in this context: quote a value that contains ': '")
            }
        }
        var text = Array(bytes[column..<end])
        while let last = text.last, isBlank(last) { text.removeLast() }
        return (String(decoding: text, as: UTF8.self), hadComment)
    }

    /// `|` (literal) or `>` (folded) with optional chomping (`-`, `+`) and indentation digit.
    private mutating func blockScalar(_ line: Int, _ column: Int, parentIndent: Int) throws(YAMLError) -> YAMLScalar {
        let header = lines[line]
        let literal = header[column] == UInt8(ascii: "|")
        var chomping: UInt8?
        var explicitIndent: Int?
        var position = column + 1
        while position < header.count, !isBlank(header[position]) {
            let byte = header[position]
            if (byte == UInt8(ascii: "-") || byte == UInt8(ascii: "+")) && chomping == nil {
                chomping = byte
            } else if (UInt8(ascii: "1")...UInt8(ascii: "9")).contains(byte) && explicitIndent == nil {
                explicitIndent = Int(byte - UInt8(ascii: "0"))
            } else {
                throw YAMLError(
                    line: line + 1, column: position + 1,
                    problem: "did not find expected comment or line break after the block scalar indicator")
            }
            position += 1
        }
        try expectLineEnd(line, position, after: "the block scalar indicator")

        var contentIndent = explicitIndent.map { max(parentIndent, 0) + $0 }
        var collected: [[UInt8]] = []
        var next = line + 1
        while next < lines.count {
            let bytes = lines[next]
            let leading = bytes.prefix(while: { $0 == space }).count
            if leading == bytes.count {
                collected.append(contentIndent.map { leading > $0 ? Array(bytes[$0...]) : [] } ?? [])
            } else {
                if contentIndent == nil { contentIndent = leading }
                guard let contentIndent, leading >= contentIndent, leading > parentIndent else { break }
                collected.append(Array(bytes[contentIndent...]))
            }
            next += 1
        }
        index = next
        var trailing = 0
        while let last = collected.last, last.isEmpty {
            collected.removeLast()
            trailing += 1
        }
        let body =
            literal
            ? collected.map { String(decoding: $0, as: UTF8.self) }.joined(separator: "\n") : Self.fold(collected)
        var text = body
        switch chomping {
        case UInt8(ascii: "-"): break
        case UInt8(ascii: "+"): text += String(repeating: "\n", count: (collected.isEmpty ? 0 : 1) + trailing)
        default: if !collected.isEmpty { text += "\n" }
        }
        return YAMLScalar(text, style: literal ? .literal : .folded, line: line + 1)
    }

    /// Folded block lines: a single break between two ordinary lines becomes a space; empty lines
    /// are breaks; lines indented further keep their breaks.
    private static func fold(_ lines: [[UInt8]]) -> String {
        var result = ""
        var breaks = 0
        var previousIndented = false
        var first = true
        for line in lines {
            guard !line.isEmpty else {
                breaks += 1
                continue
            }
            let indented = line[0] == UInt8(ascii: " ") || line[0] == UInt8(ascii: "\t")
            if first {
                result += String(repeating: "\n", count: breaks)
            } else if indented || previousIndented {
                result += String(repeating: "\n", count: breaks + 1)
            } else {
                result += breaks == 0 ? " " : String(repeating: "\n", count: breaks)
            }
            result += String(decoding: line, as: UTF8.self)
            previousIndented = indented
            breaks = 0
            first = false
        }
        return result
    }

    private struct Quoted {
        var scalar: YAMLScalar
        var endLine: Int
        var endColumn: Int
    }

    /// A single- or double-quoted scalar starting at `column`, possibly over several lines.
    private func quotedScalar(_ line: Int, _ column: Int, parentIndent: Int) throws(YAMLError) -> Quoted {
        let quote = lines[line][column]
        let double = quote == UInt8(ascii: "\"")
        var text: [UInt8] = []
        var current = line
        var position = column + 1
        while true {
            let bytes = lines[current]
            if position >= bytes.count {
                // A line break inside the quotes folds: one break is a space, each empty line a break.
                while let last = text.last, isBlank(last) { text.removeLast() }
                var breaks = 0
                current += 1
                while current < lines.count, lines[current].allSatisfy(isBlank) {
                    breaks += 1
                    current += 1
                }
                guard current < lines.count else {
                    throw YAMLError(
                        line: line + 1, column: column + 1,
                        problem:
                            "found unexpected end of stream while scanning a quoted scalar: close it with \(double ? "\"" : "'")"
                    )
                }
                text += breaks == 0 ? [space] : [UInt8](repeating: UInt8(ascii: "\n"), count: breaks)
                position = lines[current].prefix(while: isBlank).count
                continue
            }
            let byte = bytes[position]
            if byte == quote {
                if !double, position + 1 < bytes.count, bytes[position + 1] == quote {
                    text.append(quote)
                    position += 2
                    continue
                }
                let scalar = YAMLScalar(
                    String(decoding: text, as: UTF8.self), style: double ? .doubleQuoted : .singleQuoted, line: line + 1
                )
                return Quoted(scalar: scalar, endLine: current, endColumn: position + 1)
            }
            if double, byte == UInt8(ascii: "\\") {
                if position + 1 == bytes.count {
                    // An escaped line break joins the lines without a space.
                    current += 1
                    guard current < lines.count else {
                        throw YAMLError(
                            line: line + 1, column: column + 1,
                            problem: "found unexpected end of stream while scanning a quoted scalar: close it with \"")
                    }
                    position = lines[current].prefix(while: isBlank).count
                    continue
                }
                let (escaped, length) = try Self.escape(bytes, position, line: current)
                text += escaped
                position += length
                continue
            }
            text.append(byte)
            position += 1
        }
    }

    /// The bytes a `\` escape in a double-quoted scalar stands for, and how many bytes it takes.
    private static func escape(_ bytes: [UInt8], _ position: Int, line: Int) throws(YAMLError) -> ([UInt8], Int) {
        let simple: [UInt8: String] = [
            UInt8(ascii: "0"): "\0", UInt8(ascii: "a"): "\u{07}", UInt8(ascii: "b"): "\u{08}", UInt8(ascii: "t"): "\t",
            UInt8(ascii: "\t"): "\t", UInt8(ascii: "n"): "\n", UInt8(ascii: "v"): "\u{0B}", UInt8(ascii: "f"): "\u{0C}",
            UInt8(ascii: "r"): "\r", UInt8(ascii: "e"): "\u{1B}", UInt8(ascii: " "): " ", UInt8(ascii: "\""): "\"",
            UInt8(ascii: "/"): "/", UInt8(ascii: "\\"): "\\", UInt8(ascii: "N"): "\u{85}", UInt8(ascii: "_"): "\u{A0}",
            UInt8(ascii: "L"): "\u{2028}", UInt8(ascii: "P"): "\u{2029}",
        ]
        let code = bytes[position + 1]
        if let replacement = simple[code] { return (Array(replacement.utf8), 2) }
        let digits: Int
        switch code {
        case UInt8(ascii: "x"): digits = 2
        case UInt8(ascii: "u"): digits = 4
        case UInt8(ascii: "U"): digits = 8
        default:
            throw YAMLError(
                line: line + 1, column: position + 1,
                problem: "found unknown escape character while parsing a quoted scalar")
        }
        let end = position + 2 + digits
        guard end <= bytes.count,
            let value = UInt32(String(decoding: bytes[(position + 2)..<end], as: UTF8.self), radix: 16),
            let scalar = Unicode.Scalar(value)
        else {
            throw YAMLError(
                line: line + 1, column: position + 1,
                problem:
                    "invalid \\\(Character(Unicode.Scalar(code))) escape: give \(digits) hex digits of a valid code point"
            )
        }
        return (Array(String(scalar).utf8), 2 + digits)
    }

    private struct Cursor {
        var line: Int
        var column: Int
    }

    /// A flow node (`[…]`, `{…}`, quoted or plain scalar) at the cursor, which it moves past it.
    private func flowNode(_ cursor: inout Cursor, depth: Int) throws(YAMLError) -> YAMLNode {
        try skipFlowSpace(&cursor)
        guard cursor.line < lines.count else {
            throw YAMLError(
                line: lines.count, column: nil, problem: "found unexpected end of stream in a flow collection")
        }
        let open = lines[cursor.line][cursor.column]
        guard open == UInt8(ascii: "[") || open == UInt8(ascii: "{") else { return try flowScalar(&cursor) }
        guard depth <= Self.maxDepth else {
            throw YAMLError(
                line: cursor.line + 1, column: cursor.column + 1,
                problem: "nested more than \(Self.maxDepth) levels deep")
        }
        let isSequence = open == UInt8(ascii: "[")
        let close = isSequence ? UInt8(ascii: "]") : UInt8(ascii: "}")
        let start = cursor
        var items: [YAMLNode] = []
        var entries: [YAMLMappingEntry] = []
        cursor.column += 1
        while true {
            try skipFlowSpace(&cursor)
            guard cursor.line < lines.count else {
                throw YAMLError(
                    line: start.line + 1, column: start.column + 1,
                    problem:
                        "the flow \(isSequence ? "sequence" : "mapping") that starts here is not closed: end it with "
                        + "\(isSequence ? "]" : "}")")
            }
            if lines[cursor.line][cursor.column] == close {
                cursor.column += 1
                break
            }
            let entryLine = cursor.line + 1
            let key = try flowNode(&cursor, depth: depth + 1)
            try skipFlowSpace(&cursor)
            var value: YAMLNode?
            if cursor.line < lines.count, lines[cursor.line][cursor.column] == colon {
                cursor.column += 1
                try skipFlowSpace(&cursor)
                if cursor.line < lines.count, [UInt8(ascii: ","), close].contains(lines[cursor.line][cursor.column]) {
                    value = .scalar(YAMLScalar("", style: .plain, line: cursor.line + 1))
                } else {
                    value = try flowNode(&cursor, depth: depth + 1)
                }
                try skipFlowSpace(&cursor)
            }
            if isSequence {
                // [a: b] is a list holding the one-entry map {a: b}.
                items.append(value.map { .mapping([YAMLMappingEntry(key: key, value: $0)], line: entryLine) } ?? key)
            } else {
                entries.append(
                    YAMLMappingEntry(key: key, value: value ?? .scalar(YAMLScalar("", style: .plain, line: entryLine))))
            }
            guard cursor.line < lines.count else { continue }
            let separator = lines[cursor.line][cursor.column]
            if separator == UInt8(ascii: ",") {
                cursor.column += 1
            } else if separator != close {
                throw YAMLError(
                    line: cursor.line + 1, column: cursor.column + 1,
                    problem: "did not find expected ',' or '\(isSequence ? "]" : "}")' in the flow collection")
            }
        }
        return isSequence ? .sequence(items, line: start.line + 1) : .mapping(entries, line: start.line + 1)
    }

    private func flowScalar(_ cursor: inout Cursor) throws(YAMLError) -> YAMLNode {
        let bytes = lines[cursor.line]
        let first = bytes[cursor.column]
        if first == UInt8(ascii: "\"") || first == UInt8(ascii: "'") {
            let quoted = try quotedScalar(cursor.line, cursor.column, parentIndent: -1)
            cursor = Cursor(line: quoted.endLine, column: quoted.endColumn)
            return .scalar(quoted.scalar)
        }
        try refuseUnsupportedIndicator(cursor.line, cursor.column)
        var end = cursor.column
        let stops: Set<UInt8> = [
            UInt8(ascii: ","), UInt8(ascii: "["), UInt8(ascii: "]"), UInt8(ascii: "{"), UInt8(ascii: "}"),
        ]
        while end < bytes.count, !stops.contains(bytes[end]) {
            if bytes[end] == colon, end + 1 == bytes.count || isBlank(bytes[end + 1]) || stops.contains(bytes[end + 1])
            {
                break
            }
            if bytes[end] == hash, end > cursor.column, isBlank(bytes[end - 1]) { break }
            end += 1
        }
        var text = Array(bytes[cursor.column..<end])
        while let last = text.last, isBlank(last) { text.removeLast() }
        let scalar = YAMLScalar(String(decoding: text, as: UTF8.self), style: .plain, line: cursor.line + 1)
        cursor.column = end
        return .scalar(scalar)
    }

    /// Moves past blanks, line ends and comments inside a flow collection.
    private func skipFlowSpace(_ cursor: inout Cursor) throws(YAMLError) {
        while cursor.line < lines.count {
            let bytes = lines[cursor.line]
            while cursor.column < bytes.count, isBlank(bytes[cursor.column]) { cursor.column += 1 }
            if cursor.column < bytes.count, bytes[cursor.column] != hash { return }
            cursor.line += 1
            cursor.column = 0
        }
    }

    // MARK: Lines

    /// The next line with content (not blank, not only a comment), from the current one on; the
    /// current line becomes it. Refuses tab indentation.
    private mutating func nextContentLine() throws(YAMLError) -> Int? {
        while index < lines.count {
            if let column = indent(of: index), lines[index][column] != hash {
                if lines[index][column] == UInt8(ascii: "\t") {
                    throw YAMLError(
                        line: index + 1, column: column + 1,
                        problem: "found a tab character used as indentation; indent with spaces")
                }
                return index
            }
            index += 1
        }
        return nil
    }

    /// Columns of leading spaces, or nil for a line of only blanks. A tab after the spaces counts
    /// as content, so nextContentLine can refuse it.
    private func indent(of line: Int) -> Int? {
        let bytes = lines[line]
        let spaces = bytes.prefix(while: { $0 == space }).count
        guard bytes[spaces...].contains(where: { !isBlank($0) }) else { return nil }
        return spaces
    }

    private func firstContent(_ line: Int, from column: Int) -> Int? {
        let bytes = lines[line]
        var position = column
        while position < bytes.count, isBlank(bytes[position]) { position += 1 }
        guard position < bytes.count, bytes[position] != hash else { return nil }
        return position
    }

    private func isSequenceEntry(_ line: Int, _ column: Int) -> Bool {
        let bytes = lines[line]
        return column < bytes.count && bytes[column] == UInt8(ascii: "-")
            && (column + 1 == bytes.count || isBlank(bytes[column + 1]))
    }

    private func isDocumentMarker(_ line: Int) -> Bool { isMarker(line, "---") || isMarker(line, "...") }

    private func isMarker(_ line: Int, _ marker: String) -> Bool {
        let bytes = lines[line]
        return bytes.starts(with: Array(marker.utf8)) && (bytes.count == 3 || isBlank(bytes[3]))
    }

    private func expectLineEnd(_ line: Int, _ column: Int, after what: String) throws(YAMLError) {
        guard line < lines.count, let position = firstContent(line, from: column) else { return }
        throw YAMLError(
            line: line + 1, column: position + 1, problem: "unexpected text after \(what); a comment starts with ' #'")
    }
}

private let space = UInt8(ascii: " ")
private let colon = UInt8(ascii: ":")
private let hash = UInt8(ascii: "#")

private func isBlank(_ byte: UInt8) -> Bool { byte == space || byte == UInt8(ascii: "\t") }
