import Foundation
import PKI
import Testing

/// Keys generated once and shared, because RSA generation dominates the suite's run time.
/// Generation itself is tested separately for every size and curve.
enum SharedKeys {
    static let rsa2048 = Result { () throws(PKIError) in try PrivateKey.generate(.rsa(bits: 2048)) }
    static let p256 = Result { () throws(PKIError) in try PrivateKey.generate(.ec(.p256)) }
    static let p384 = Result { () throws(PKIError) in try PrivateKey.generate(.ec(.p384)) }
    static let p521 = Result { () throws(PKIError) in try PrivateKey.generate(.ec(.p521)) }

    static func key(for algorithm: SignatureAlgorithm) throws -> PrivateKey {
        switch algorithm {
        case .rs256, .ps256: try rsa2048.get()
        case .es256: try p256.get()
        case .es384: try p384.get()
        case .es512: try p521.get()
        }
    }
}

/// The `openssl` command-line tool, used as an independent check of what PKI writes and as a
/// source of files PKI must read. Debian's `openssl` package provides it.
struct OpenSSLTool {
    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    /// A fresh directory for one test's files, removed when the test's value goes away.
    final class WorkDirectory {
        let url: URL

        init() throws {
            url = FileManager.default.temporaryDirectory.appendingPathComponent("pki-tests-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        }

        deinit {
            try? FileManager.default.removeItem(at: url)
        }

        func path(_ name: String) -> String { url.appendingPathComponent(name).path }

        func write(_ name: String, _ text: String) throws {
            try Data(text.utf8).write(to: url.appendingPathComponent(name))
        }

        func write(_ name: String, _ bytes: [UInt8]) throws {
            try Data(bytes).write(to: url.appendingPathComponent(name))
        }

        func readText(_ name: String) throws -> String {
            try String(contentsOf: url.appendingPathComponent(name), encoding: .utf8)
        }

        func readBytes(_ name: String) throws -> [UInt8] {
            try [UInt8](Data(contentsOf: url.appendingPathComponent(name)))
        }
    }

    /// Runs `openssl` with `arguments` in `directory`; returns stdout and stderr together, and
    /// throws with that output if the exit status is not zero.
    @discardableResult
    static func run(_ arguments: [String], in directory: WorkDirectory) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["openssl"] + arguments
        process.currentDirectoryURL = directory.url
        process.standardInput = FileHandle.nullDevice
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        do {
            try process.run()
        } catch {
            throw Failure(description: "could not start openssl (install Debian's 'openssl' package): \(error)")
        }
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let text = String(decoding: data, as: UTF8.self)
        guard process.terminationStatus == 0 else {
            throw Failure(
                description: "openssl \(arguments.joined(separator: " ")) exited \(process.terminationStatus): \(text)")
        }
        return text
    }
}

/// Lowercase hex, for comparing with openssl's output.
func hex(_ bytes: [UInt8]) -> String {
    bytes.map { String(format: "%02x", $0) }.joined()
}
