import Foundation
import TestSupport

/// The `openssl` command-line tool, used as an independent check of what PKI writes and as a
/// source of files PKI must read. Debian's `openssl` package provides it.
struct OpenSSLTool {
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
            throw TestFailure("could not start openssl (install Debian's 'openssl' package): \(error)")
        }
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let text = String(decoding: data, as: UTF8.self)
        guard process.terminationStatus == 0 else {
            throw TestFailure(
                "openssl \(arguments.joined(separator: " ")) exited \(process.terminationStatus): \(text)")
        }
        return text
    }
}

/// Lowercase hex, for comparing with openssl's output.
func hex(_ bytes: [UInt8]) -> String {
    bytes.map { String(format: "%02x", $0) }.joined()
}
