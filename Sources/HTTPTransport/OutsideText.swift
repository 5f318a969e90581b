/// Text that came from outside (a server's answer, a request's fields, a token's claims), made safe
/// to put in a log line or an error message. Control characters (C0, DEL, C1, and Unicode's line and
/// paragraph separators) are written as escapes, so that none can end a line, forge the next one or
/// drive a terminal, and the text is cut to `limit` characters, so that one answer cannot flood a
/// log or a pod's events. Lives here, the lowest layer, because every layer above quotes it.
public enum OutsideText {
    /// `quoting` also escapes `"` and `\`, for text shown between quotes (Go's %q, as the Azure
    /// provider's messages show values).
    public static func escaped(_ text: some StringProtocol, limit: Int = 4096, quoting: Bool = false) -> String {
        if text.utf8.count <= limit, !text.utf8.contains(where: { mayNeedEscape($0, quoting: quoting) }) {
            return String(text)
        }
        var result = ""
        for (offset, scalar) in text.unicodeScalars.enumerated() {
            if offset == limit {
                result += "…"
                break
            }
            switch scalar.value {
            case 0x0A: result += "\\n"
            case 0x0D: result += "\\r"
            case 0x09: result += "\\t"
            case 0x22 where quoting: result += "\\\""
            case 0x5C where quoting: result += "\\\\"
            case 0x00..<0x20, 0x7F..<0xA0:
                let hex = String(scalar.value, radix: 16)
                result += "\\x" + (hex.count == 1 ? "0" + hex : hex)
            case 0x2028, 0x2029:
                result += "\\u{\(String(scalar.value, radix: 16))}"
            default:
                result.unicodeScalars.append(scalar)
            }
        }
        return result
    }

    /// Bytes of UTF-8 that start or are something `escaped` rewrites: C0 and DEL, the lead byte of
    /// C1 controls (0xC2) and of the separators (0xE2), and with `quoting` `"` and `\`. Most log
    /// lines have none, and are returned as they are.
    private static func mayNeedEscape(_ byte: UInt8, quoting: Bool) -> Bool {
        byte < 0x20 || byte == 0x7F || byte == 0xC2 || byte == 0xE2 || (quoting && (byte == 0x22 || byte == 0x5C))
    }
}
