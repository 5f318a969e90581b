import Glibc
import HTTPTransport

/// Writing to the standard streams without Foundation's buffering: `get` output must be the
/// exact bytes, and messages must not interleave with them.
public enum Terminal {
    public static func write(_ bytes: [UInt8], to descriptor: Int32 = STDOUT_FILENO) throws(WriteError) {
        var offset = 0
        while offset < bytes.count {
            let written = bytes[offset...].withUnsafeBytes { Glibc.write(descriptor, $0.baseAddress, $0.count) }
            if written < 0 {
                if errno == EINTR { continue }
                throw WriteError(code: errno)
            }
            offset += written
        }
    }

    public static func line(_ text: String, to descriptor: Int32 = STDOUT_FILENO) {
        try? write(Array((text + "\n").utf8), to: descriptor)
    }

    /// One line, whatever the message quotes from servers or files (as the log handler writes it).
    public static func error(_ text: String) {
        line(OutsideText.escaped(text, limit: .max), to: STDERR_FILENO)
    }

    public struct WriteError: Error, CustomStringConvertible {
        public var code: Int32
        public var description: String { "cannot write the output: \(String(cString: strerror(code)))" }
    }
}
