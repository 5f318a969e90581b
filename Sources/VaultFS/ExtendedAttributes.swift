import FoundationEssentials
import ObjectCache

/// The `user.*` extended attributes of a file, from its object's metadata.
enum ExtendedAttributes {
    static func list(for metadata: ObjectMetadata) -> [(name: String, value: String)] {
        var attributes: [(String, String)] = [
            ("user.version", metadata.version),
            ("user.id", metadata.id),
        ]
        if let contentType = metadata.contentType { attributes.append(("user.content_type", contentType)) }
        for (name, time) in [
            ("user.created", metadata.created), ("user.updated", metadata.updated),
            ("user.not_before", metadata.notBefore), ("user.expires", metadata.expires),
        ] {
            if let time { attributes.append((name, timestamp(time))) }
        }
        if !metadata.tags.isEmpty {
            attributes.append(("user.tags", tagsJSON(metadata.tags)))
            for (name, value) in metadata.tags.sorted(by: { $0.key < $1.key }) {
                attributes.append(("user.tag.\(name)", value))
            }
        }
        return attributes
    }

    /// RFC 3339 in UTC, e.g. `2026-11-29T01:18:42Z`.
    static func timestamp(_ seconds: Int64) -> String {
        Date(timeIntervalSince1970: TimeInterval(seconds)).formatted(.iso8601)
    }

    static func tagsJSON(_ tags: [String: String]) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return (try? encoder.encode(tags)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
    }
}
