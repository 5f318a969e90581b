internal import COpenSSL

/// A failed PKI operation: what was being done and why it failed.
///
/// `reason` never contains key material or passwords. When OpenSSL refused something, its own
/// error strings are appended to `reason` so the cause can be looked up.
public struct PKIError: Error, CustomStringConvertible, Equatable {
    /// What was being attempted, e.g. "parse certificate".
    public let operation: String
    /// Why it failed and, where it helps, what to do about it.
    public let reason: String

    public init(operation: String, reason: String) {
        self.operation = operation
        self.reason = reason
    }

    public var description: String { "\(operation) failed: \(reason)" }

    /// An error for a failed OpenSSL call: `reason`, then what OpenSSL's error queue says. Drains the
    /// queue so a later failure is not blamed on this one.
    static func openSSL(_ operation: String, _ reason: String) -> PKIError {
        let details = OpenSSLErrors.drain()
        guard !details.isEmpty else { return PKIError(operation: operation, reason: reason) }
        return PKIError(operation: operation, reason: "\(reason) (OpenSSL: \(details.joined(separator: "; ")))")
    }
}

/// OpenSSL's per-thread error queue. Every PKI call is synchronous, so a failure and the read of
/// its queue happen on the same thread.
enum OpenSSLErrors {
    /// The queued error strings, oldest (usually the root cause) first, without repeats; at most
    /// three, which is plenty to identify the failure.
    static func drain() -> [String] {
        var messages: [String] = []
        var buffer = [CChar](repeating: 0, count: 256)
        while case let code = ERR_get_error(), code != 0 {
            guard messages.count < 3 else { continue }
            ERR_error_string_n(code, &buffer, buffer.count)
            let message = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            if !messages.contains(message) { messages.append(message) }
        }
        return messages
    }

    /// Forgets queued errors after a failure that is reported some other way (a `false` from verify).
    static func clear() {
        ERR_clear_error()
    }
}
