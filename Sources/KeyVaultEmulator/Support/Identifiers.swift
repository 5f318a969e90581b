import FoundationEssentials
import PKI

/// Identifier rules and generators that match what Key Vault and Entra ID hand out.
enum Identifiers {
    /// Key Vault object versions are 32 lower-case hex characters.
    static func newVersion() -> String {
        hex(SecureRandom.bytes(16))
    }

    static func newUUID() -> String {
        UUID().uuidString.lowercased()
    }

    /// A stable GUID derived from a string, so an identity seen twice gets the same object id
    /// without the emulator having to remember it.
    static func stableUUID(from seed: String) -> String {
        let digest = Digest.sha256(Array(seed.utf8))
        let hexDigits = hex(Array(digest.prefix(16)))
        let chars = Array(hexDigits)
        return [0..<8, 8..<12, 12..<16, 16..<20, 20..<32]
            .map { String(chars[$0]) }
            .joined(separator: "-")
    }

    static func hex(_ bytes: [UInt8]) -> String {
        let digits = Array("0123456789abcdef")
        var result = ""
        result.reserveCapacity(bytes.count * 2)
        for byte in bytes {
            result.append(digits[Int(byte >> 4)])
            result.append(digits[Int(byte & 0x0f)])
        }
        return result
    }

    /// Object names: 1-127 characters of 0-9, a-z, A-Z and '-'.
    static func isValidObjectName(_ name: String) -> Bool {
        !name.isEmpty && name.utf8.count <= 127
            && name.utf8.allSatisfy { isAlphanumeric($0) || $0 == UInt8(ascii: "-") }
    }

    static let objectNameRule = "1-127 characters of 0-9, a-z, A-Z and '-'"

    /// Vault names: 3-24 characters, letters, digits and hyphens, starting with a letter, ending
    /// with a letter or digit, without consecutive hyphens.
    static func isValidVaultName(_ name: String) -> Bool {
        let bytes = Array(name.utf8)
        guard (3...24).contains(bytes.count),
            let first = bytes.first, isLetter(first),
            let last = bytes.last, isAlphanumeric(last),
            bytes.allSatisfy({ isAlphanumeric($0) || $0 == UInt8(ascii: "-") })
        else { return false }
        return !name.contains("--")
    }

    static let vaultNameRule =
        "3-24 characters of letters, digits and '-', starting with a letter, ending with a letter or digit, no '--'"

    private static func isLetter(_ byte: UInt8) -> Bool {
        (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte)
    }

    private static func isAlphanumeric(_ byte: UInt8) -> Bool {
        isLetter(byte) || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
    }
}

extension StringProtocol {
    /// Federated token files usually end in a newline that clients send verbatim.
    var trimmedWhitespace: String {
        String(drop(while: \.isWhitespace).reversed().drop(while: \.isWhitespace).reversed())
    }
}
