/// Text that came from outside (a server's answer, a request's fields, a token's claims), made safe
/// to put in a log line or an error message. Control characters (C0, DEL, C1, and Unicode's line and
/// paragraph separators) are written as escapes, so that none can end a line, forge the next one or
/// drive a terminal, and the text is cut to `limit` characters, so that one answer cannot flood a
/// log or a pod's events. Lives here, the lowest layer, because every layer above quotes it.
public enum OutsideText {
    public static func escaped(_ text: some StringProtocol, limit: Int = 4096) -> String {
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
}
