/// A compact JWS (RFC 7515), such as a JWT. Parsing and signing work on the raw JSON bytes;
/// reading the header and claims is the caller's job.
public struct JWS: Sendable {
    public let headerJSON: [UInt8]
    public let payloadJSON: [UInt8]
    public let signature: [UInt8]
    /// ASCII of "<header>.<payload>" exactly as received: the bytes the signature covers.
    public let signingInput: [UInt8]

    public init(compact: String) throws(PKIError) {
        let operation = "parse JWS"
        let text = compact.trimmingSpaces()
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3 else {
            throw PKIError(
                operation: operation,
                reason: "expected three base64url parts separated by '.', found \(parts.count)")
        }
        func decode(_ part: Substring, _ name: String) throws(PKIError) -> [UInt8] {
            guard let bytes = Base64URL.decode(String(part)) else {
                throw PKIError(operation: operation, reason: "the \(name) is not valid base64url")
            }
            return bytes
        }
        headerJSON = try decode(parts[0], "header")
        payloadJSON = try decode(parts[1], "payload")
        signature = try decode(parts[2], "signature")
        guard !headerJSON.isEmpty else { throw PKIError(operation: operation, reason: "the header is empty") }
        signingInput = Array(parts[0].utf8) + [UInt8(ascii: ".")] + Array(parts[1].utf8)
    }

    /// "<header>.<payload>.<signature>", each part base64url without padding.
    public static func sign(
        headerJSON: [UInt8], payloadJSON: [UInt8], key: PrivateKey,
        algorithm: SignatureAlgorithm
    ) throws(PKIError) -> String {
        let signingInput = Base64URL.encode(headerJSON) + "." + Base64URL.encode(payloadJSON)
        let signature = try key.sign(Array(signingInput.utf8), algorithm: algorithm)
        return signingInput + "." + Base64URL.encode(signature)
    }

    /// Whether the signature is a valid `algorithm` signature by `key`. Checking that the header's
    /// "alg" is the algorithm expected is the caller's job.
    public func verify(with key: PublicKey, algorithm: SignatureAlgorithm) -> Bool {
        key.verify(signature: signature, message: signingInput, algorithm: algorithm)
    }
}
