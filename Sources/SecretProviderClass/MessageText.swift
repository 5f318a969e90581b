import HTTPTransport

extension StringProtocol {
    /// Without leading and trailing white space, like Go's strings.TrimSpace (the provider trims every value).
    var trimmed: String {
        String(drop(while: \.isWhitespace).reversed().drop(while: \.isWhitespace).reversed())
    }
}

enum MessageText {
    /// `value` quoted the way Go's %q does for printable text, cut to `limit` characters so a pasted
    /// blob cannot flood a pod event. Only ever used for non-secret parameter values.
    static func quoted(_ value: String, limit: Int = 128) -> String {
        "\"" + OutsideText.escaped(value, limit: limit, quoting: true) + "\""
    }

    /// The candidate a mistyped `word` most likely meant: same letters in another case, or at most
    /// two edits away.
    static func suggestion(for word: String, among candidates: [String]) -> String? {
        let lowered = word.lowercased()
        if let sameLetters = candidates.first(where: { $0.lowercased() == lowered }) { return sameLetters }
        let scored = candidates.map { (candidate: $0, distance: editDistance(lowered, $0.lowercased())) }
        guard let best = scored.min(by: { $0.distance < $1.distance }), best.distance <= 2 else { return nil }
        return best.candidate
    }

    /// " (did you mean X?)" or "".
    static func didYouMean(_ word: String, among candidates: [String]) -> String {
        suggestion(for: word, among: candidates).map { " (did you mean \($0)?)" } ?? ""
    }

    private static func editDistance(_ lhs: String, _ rhs: String) -> Int {
        let left = Array(lhs)
        let right = Array(rhs)
        guard !left.isEmpty else { return right.count }
        guard !right.isEmpty else { return left.count }
        var previous = Array(0...right.count)
        var current = previous
        for i in 1...left.count {
            current[0] = i
            for j in 1...right.count {
                let substitution = previous[j - 1] + (left[i - 1] == right[j - 1] ? 0 : 1)
                current[j] = min(previous[j] + 1, current[j - 1] + 1, substitution)
            }
            swap(&previous, &current)
        }
        return previous[right.count]
    }
}

/// The provider's per-object wrapper, so people can search for the messages they already know.
enum ObjectFailure {
    static func message(type: String, name: String, version: String, cause: String) -> String {
        "failed to get objectType:\(type), objectName:\(name), objectVersion:\(version): \(cause)"
    }
}
