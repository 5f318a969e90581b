/// Key Vault's rules for the names and versions of objects, in one place: the client checks what
/// it is asked for, the cache what a vault lists, the filesystem what a lookup names, and the
/// SecretProviderClass parser what a class names.
public enum KeyVaultNames {
    /// 1-127 ASCII letters, digits and '-'.
    public static func isObjectName(_ name: some StringProtocol) -> Bool {
        !name.isEmpty && name.utf8.count <= 127
            && name.utf8.allSatisfy { isAlphanumeric($0) || $0 == UInt8(ascii: "-") }
    }

    /// Versions are 32 hex characters from Key Vault; any 1-64 ASCII letters and digits are accepted.
    public static func isVersion(_ version: some StringProtocol) -> Bool {
        !version.isEmpty && version.utf8.count <= 64 && version.utf8.allSatisfy(isAlphanumeric)
    }

    private static func isAlphanumeric(_ byte: UInt8) -> Bool {
        (48...57).contains(byte) || (65...90).contains(byte) || (97...122).contains(byte)
    }
}
