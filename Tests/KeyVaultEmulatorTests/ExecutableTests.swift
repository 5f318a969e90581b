import Foundation
import HTTPTypes
import Testing

/// The `akvfs-emulator` executable as scripts and the conformance suite run it.
@Suite("akvfs-emulator executable")
struct ExecutableTests {
    static var binary: URL {
        URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("akvfs-emulator")
    }

    struct Run {
        var process: Process
        var stdout: Pipe
        var stderr: Pipe
    }

    static func launch(_ arguments: [String]) throws -> Run {
        let process = Process()
        process.executableURL = binary
        process.arguments = arguments
        let stdout = Pipe()
        let stderr = Pipe()
        process.standardOutput = stdout
        process.standardError = stderr
        try process.run()
        return Run(process: process, stdout: stdout, stderr: stderr)
    }

    @Test("Prints exactly one JSON line when ready, and stops cleanly on SIGTERM")
    func readyLineAndSigterm() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("emu-exe-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let caFile = directory.appendingPathComponent("ca.pem").path
        let run = try Self.launch(["--port", "0", "--imds-port", "0", "--ca-out", caFile, "--demo", "--log-level", "warning"])
        let line = try #require(readLine(from: run.stdout.fileHandleForReading))
        let info = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        for key in ["port", "imdsPort", "authorityHost", "tenantId", "caFile"] {
            #expect(info[key] != nil, "ready line has \(key)")
        }
        #expect((info["port"] as? Int ?? 0) > 0)
        #expect(info["caFile"] as? String == caFile)
        #expect(try String(contentsOfFile: caFile, encoding: .utf8).hasPrefix("-----BEGIN CERTIFICATE-----"))
        run.process.terminate()
        run.process.waitUntilExit()
        #expect(run.process.terminationStatus == 0)
        let rest = run.stdout.fileHandleForReading.readDataToEndOfFile()
        #expect(rest.isEmpty, "nothing but the ready line goes to stdout")
    }

    @Test("Bad flags and bad seed files exit non-zero with a reason", arguments: [
        (["--port", "70000", "--ca-out", "/tmp/x.pem"], "--port must be between 0 and 65535"),
        (["--port", "0"], "--ca-out"),
        (["--port", "0", "--ca-out", "/tmp/x.pem", "--seed", "/nonexistent/seed.json"], "seed file /nonexistent/seed.json"),
        (["--port", "0", "--ca-out", "/nonexistent-dir/ca.pem", "--imds-port", "0"], "cannot write the CA certificate"),
        (["--port", "0", "--ca-out", "/tmp/x.pem", "--bogus"], "Unknown option '--bogus'"),
    ])
    func badInput(arguments: [String], expected: String) throws {
        let run = try Self.launch(arguments)
        run.process.waitUntilExit()
        #expect(run.process.terminationStatus != 0)
        let errors = String(decoding: run.stderr.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(errors.contains(expected), "stderr was: \(errors)")
    }

    @Test("A seed file with a typo names the field")
    func seedTypo() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("emu-seed-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let seedFile = directory.appendingPathComponent("seed.json")
        try Data(#"{"vaults": [{"name": "demo", "secrest": []}]}"#.utf8).write(to: seedFile)
        let run = try Self.launch(["--port", "0", "--imds-port", "0", "--ca-out", directory.appendingPathComponent("ca.pem").path, "--seed", seedFile.path])
        run.process.waitUntilExit()
        #expect(run.process.terminationStatus != 0)
        let errors = String(decoding: run.stderr.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(errors.contains("unknown field 'secrest'"))
    }

    private func readLine(from handle: FileHandle) -> String? {
        var bytes: [UInt8] = []
        while true {
            let chunk = handle.readData(ofLength: 1)
            guard let byte = chunk.first else { return bytes.isEmpty ? nil : String(decoding: bytes, as: UTF8.self) }
            if byte == UInt8(ascii: "\n") { return String(decoding: bytes, as: UTF8.self) }
            bytes.append(byte)
        }
    }
}
