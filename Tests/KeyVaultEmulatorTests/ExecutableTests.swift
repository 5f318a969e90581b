import Foundation
import HTTPTypes
import TestSupport
import Testing

/// The `akvfs-emulator` executable as scripts and the conformance suite run it.
@Suite("akvfs-emulator executable")
struct ExecutableTests {
    static let binary = builtExecutable("akvfs-emulator")

    static func launch(_ arguments: [String], errors: String) throws -> ChildProcess {
        try ChildProcess.spawn(binary, arguments, stdout: .pipe, stderr: .file(errors))
    }

    static func errorFile() -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("emulator-stderr-\(UUID().uuidString)").path
    }

    @Test("Prints exactly one JSON line when ready, and stops cleanly on SIGTERM")
    func readyLineAndSigterm() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("emu-exe-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let caFile = directory.appendingPathComponent("ca.pem").path
        let errors = Self.errorFile()
        defer { try? FileManager.default.removeItem(atPath: errors) }
        let run = try Self.launch(
            ["--port", "0", "--imds-port", "0", "--ca-out", caFile, "--demo", "--log-level", "warning"], errors: errors)
        let line = try #require(run.readLine())
        let info = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        for key in ["port", "imdsPort", "authorityHost", "tenantId", "caFile"] {
            #expect(info[key] != nil, "ready line has \(key)")
        }
        #expect((info["port"] as? Int ?? 0) > 0)
        #expect(info["caFile"] as? String == caFile)
        #expect(try String(contentsOfFile: caFile, encoding: .utf8).hasPrefix("-----BEGIN CERTIFICATE-----"))
        run.signal(SIGTERM)
        #expect(run.wait() == 0)
        #expect(run.readAll().isEmpty, "nothing but the ready line goes to stdout")
    }

    @Test(
        "Bad flags and bad seed files exit non-zero with a reason",
        arguments: [
            (["--port", "70000", "--ca-out", "/tmp/x.pem"], "--port must be between 0 and 65535"),
            (["--port", "0"], "--ca-out"),
            (
                ["--port", "0", "--ca-out", "/tmp/x.pem", "--seed", "/nonexistent/seed.json"],
                "seed file /nonexistent/seed.json"
            ),
            (
                ["--port", "0", "--ca-out", "/nonexistent-dir/ca.pem", "--imds-port", "0"],
                "cannot write the CA certificate"
            ),
            (["--port", "0", "--ca-out", "/tmp/x.pem", "--bogus"], "Unknown option '--bogus'"),
        ])
    func badInput(arguments: [String], expected: String) throws {
        let errorFile = Self.errorFile()
        defer { try? FileManager.default.removeItem(atPath: errorFile) }
        let run = try Self.launch(arguments, errors: errorFile)
        #expect(run.wait() != 0)
        let errors = (try? String(contentsOfFile: errorFile, encoding: .utf8)) ?? ""
        #expect(errors.contains(expected), "stderr was: \(errors)")
    }

    @Test("A seed file with a typo names the field")
    func seedTypo() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("emu-seed-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let seedFile = directory.appendingPathComponent("seed.json")
        try Data(#"{"vaults": [{"name": "demo", "secrest": []}]}"#.utf8).write(to: seedFile)
        let errorFile = Self.errorFile()
        defer { try? FileManager.default.removeItem(atPath: errorFile) }
        let run = try Self.launch(
            [
                "--port", "0", "--imds-port", "0", "--ca-out", directory.appendingPathComponent("ca.pem").path,
                "--seed", seedFile.path,
            ], errors: errorFile)
        #expect(run.wait() != 0)
        let errors = (try? String(contentsOfFile: errorFile, encoding: .utf8)) ?? ""
        #expect(errors.contains("unknown field 'secrest'"))
    }
}
