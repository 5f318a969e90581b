import CXattr
// Swift attributes the members of `struct stat` and `timespec` to CoreFoundation in this file
// (MemberImportVisibility).
import CoreFoundation
import Foundation
import Glibc
import HTTPTypes
import Synchronization
import TestSupport
import Testing

/// docs/semantics.md walked on real mounts: every row of its operation tables and of its table of
/// Key Vault's failures is performed as the row says, and must answer what the row says. A row
/// this file cannot perform fails the test, so the document claims nothing that is not checked.
@Suite("Semantics: docs/semantics.md on a real mount", .serialized, .timeLimit(.minutes(2)))
struct SemanticsTests {
    /// The group of the walked mount: one no test process belongs to, so "another user" is
    /// refused by the modes alone, whatever groups the test runs with.
    static let group: UInt32 = 4242

    @Test("Every row of the operation tables answers as documented; attributes are as documented")
    func operations() async throws {
        let rows = try SemanticsDocument.rows(under: ["Operation", "Path", "Answer"])
        #expect(rows.count >= 100, "the operation tables were found in docs/semantics.md")
        let mountedAt = Int(Date().timeIntervalSince1970)
        let arguments = ["--ttl", "2", "--max-stale", "300", "--gid", "\(Self.group)"]
        try await withMountedDemo(arguments: arguments) { (emulator, mount) async throws in
            let outside = emulator.directory.appendingPathComponent("outside").path
            try FileManager.default.createDirectory(atPath: outside, withIntermediateDirectories: true)
            let walker = OperationWalker(mountpoint: mount.mountpoint, outside: outside)
            for row in rows {
                guard row.cells.count >= 3 else {
                    Issue.record("\(row): a row needs an operation, a path and an answer")
                    continue
                }
                guard let expected = Answer(row.cells[2]) else {
                    Issue.record("\(row): '\(row.cells[2])' is neither OK nor an errno name this test knows")
                    continue
                }
                let performed: Performed
                do {
                    performed = try await onOwnThread { try walker.perform(row.cells[0], on: row.cells[1]) }
                } catch {
                    Issue.record("\(row): \(error)")
                    continue
                }
                #expect(performed.answer == expected, "\(row): akvfs answered \(performed.answer)")
                if let problem = performed.problem { Issue.record("\(row): \(problem)") }
            }
            try await Self.checkAttributes(mount, mountedAt: mountedAt)
        }
    }

    /// The "Attributes" section: types, modes, owner, sizes, times, link counts and blocks.
    static func checkAttributes(_ mount: MountedVault, mountedAt: Int) async throws {
        let file = try await status(mount.path("secrets/api-key"))
        let content = try await mount.read("secrets/api-key")
        #expect(file.mode & S_IFMT == S_IFREG && file.mode & 0o7777 == 0o440)
        #expect(file.uid == getuid(), "the owner defaults to the user running akvfs")
        #expect(file.gid == group, "--gid")
        #expect(file.size == content.utf8.count)
        #expect(file.links == 1)
        #expect(file.blocks == (file.size + 511) / 512 && file.blockSize == 4096)
        #expect(file.modified == file.changed && file.modified == file.accessed)
        let updated = try #require(try await extendedAttribute(mount.path("secrets/api-key"), "user.updated"))
        let updatedTime = try #require(ISO8601DateFormatter().date(from: updated))
        #expect(file.modified == Int(updatedTime.timeIntervalSince1970), "mtime is Key Vault's updated")

        let directory = try await status(mount.path("secrets"))
        #expect(directory.mode & S_IFMT == S_IFDIR && directory.mode & 0o7777 == 0o550)
        #expect(directory.uid == getuid() && directory.gid == group)
        #expect(directory.size == 0 && directory.links == 2 && directory.blocks == 0)
        #expect(
            (mountedAt...(mountedAt + 60)).contains(directory.modified),
            "a directory's mtime is the time of the mount")
        let root = try await status(mount.mountpoint)
        #expect(root.mode & 0o7777 == 0o550 && root.modified == directory.modified)
    }

    @Test("Every row of the table of Key Vault's failures answers as documented, for files never read and read")
    func failures() async throws {
        let rows = try SemanticsDocument.rows(under: ["Key Vault answers", "A file never read", "A file already read"])
        #expect(rows.count >= 5, "the table of failures was found in docs/semantics.md")
        let cases = rows.compactMap { row -> FailureCase? in
            do {
                return try FailureCase(row)
            } catch {
                Issue.record("\(row): \(error)")
                return nil
            }
        }
        let secrets = cases.flatMap { [$0.neverRead, $0.alreadyRead] }.map {
            #"{"name": "\#($0)", "value": "value-of-\#($0)"}"#
        }
        let seed = #"{"vaults": [{"name": "failures", "secrets": [\#(secrets.joined(separator: ", "))]}]}"#
        let arguments = ["--ttl", "1", "--fetch-timeout", "1", "--max-stale", "300"]
        try await withMountedVault(seedJSON: seed, vault: "failures", arguments: arguments) { (emulator, mount) in
            try await Self.walkFailures(cases, emulator, mount)
        }
    }

    static func walkFailures(_ cases: [FailureCase], _ emulator: EmulatorProcess, _ mount: MountedVault) async throws {
        for failure in cases {
            let (value, error) = try await contents(mount.path("secrets/\(failure.alreadyRead)"))
            #expect(value == "value-of-\(failure.alreadyRead)" && error == 0, "\(failure.row): read before the fault")
        }
        for failure in cases {
            for name in [failure.neverRead, failure.alreadyRead] {
                let rule: [String: Any] = [
                    "method": "GET", "vault": "failures", "pathPrefix": "/secrets/\(name)", "count": 100_000,
                ]
                try await emulator.injectFault(rule.merging(failure.action.mapValues { $0 as Any }) { $1 })
            }
        }
        // All at once: first reads that wait for Key Vault do not hold each other up.
        await withTaskGroup(of: Void.self) { group in
            for failure in cases { group.addTask { await checkNeverRead(failure, mount) } }
        }
        await withTaskGroup(of: Void.self) { group in
            for failure in cases { group.addTask { await checkAlreadyRead(failure, emulator, mount) } }
        }
        try await emulator.clearFaults()
    }

    /// A first read waits at most --fetch-timeout (1 s here) and fails as the row says.
    static func checkNeverRead(_ failure: FailureCase, _ mount: MountedVault) async {
        let started = ContinuousClock.now
        let error = (try? await contents(mount.path("secrets/\(failure.neverRead)")).error) ?? -1
        let took = ContinuousClock.now - started
        #expect(
            Answer(errno: error) == failure.neverReadAnswer,
            "\(failure.row): a file never read answered \(Answer(errno: error))")
        if failure.neverReadAnswer == .error(ETIMEDOUT) {
            #expect(
                took >= .milliseconds(900) && took < .seconds(5),
                "\(failure.row): ETIMEDOUT after \(took), not --fetch-timeout")
        }
    }

    /// A file already read keeps its content through revalidations that meet the failure, or
    /// fails as the row says once a revalidation has met it.
    static func checkAlreadyRead(_ failure: FailureCase, _ emulator: EmulatorProcess, _ mount: MountedVault) async {
        let path = mount.path("secrets/\(failure.alreadyRead)")
        let value = "value-of-\(failure.alreadyRead)"
        let started = ContinuousClock.now
        var last = Answer.ok
        // Served for 2.5 TTLs when the last good content is to be served; else until it fails.
        let limit: Duration = failure.alreadyReadAnswer == .ok ? .milliseconds(2_500) : .seconds(8)
        while ContinuousClock.now - started < limit {
            guard let result = try? await contents(path) else { break }
            last = Answer(errno: result.error)
            if result.error == 0, result.text != value {
                Issue.record("\(failure.row): read '\(result.text ?? "")' instead of the value")
            }
            if failure.alreadyReadAnswer != .ok, last != .ok { break }
            try? await Task.sleep(for: .milliseconds(100))
        }
        #expect(last == failure.alreadyReadAnswer, "\(failure.row): a file already read answered \(last)")
        let faulted =
            (try? await emulator.requests(vault: "failures", path: "/secrets/\(failure.alreadyRead)"))?
            .filter { $0["fault"] is String } ?? []
        #expect(!faulted.isEmpty, "\(failure.row): a revalidation met the fault")
    }

    @Test("A first read waiting for Key Vault holds up neither other new names nor ls of its directory")
    func waitingReadHoldsNothingElse() async throws {
        let seed = """
            {"vaults": [{"name": "waits", "secrets": [{"name": "hangs", "value": "h"}, {"name": "other", "value": "o"}]}]}
            """
        try await withMountedVault(seedJSON: seed, vault: "waits", arguments: ["--fetch-timeout", "4"]) {
            (emulator, mount) in
            try await emulator.injectFault([
                "vault": "waits", "pathPrefix": "/secrets/hangs", "action": "hang", "hangSeconds": 30,
            ])
            let hangingPath = mount.path("secrets/hangs")
            let hanging = Task {
                let answer = try await contents(hangingPath)
                return (answer.error, ContinuousClock.now)
            }
            // The emulator logs a hanging request when it starts to hang.
            for _ in 0..<200 {
                let requests = try await emulator.requests(vault: "waits", path: "/secrets/hangs")
                if requests.contains(where: { $0["fault"] as? String == "hang" }) { break }
                try await Task.sleep(for: .milliseconds(25))
            }
            // Were lookups in one directory let in one at a time, these would wait for the
            // hanging read to give up (--fetch-timeout), and be answered after it.
            let (other, error) = try await contents(mount.path("secrets/other"))
            let names = try await listing(mount.path("secrets"))
            let answeredAt = ContinuousClock.now
            let (hangingError, gaveUpAt) = try await hanging.value
            #expect(other == "o" && error == 0, "a new name in the same directory is read")
            #expect(names == [".versions", "hangs", "other"], "ls lists the directory")
            #expect(hangingError == ETIMEDOUT, "the hanging read fails after --fetch-timeout")
            #expect(answeredAt < gaveUpAt, "the other name and ls were answered while the first read waited")
        }
    }

    @Test("New, deleted, disabled, expired and not-yet-valid objects behave as documented")
    func lifecycle() async throws {
        let arguments = ["--ttl", "1", "--max-stale", "300", "--negative-ttl", "2"]
        try await withMountedDemo(arguments: arguments) { (emulator, mount) async throws in
            let now = Int(Date().timeIntervalSince1970)
            let puts: [(String, [String: Any])] = [
                ("expired-secret", ["value": "expired-value", "attributes": ["exp": now - 3600]]),
                ("future-secret", ["value": "future-value", "attributes": ["nbf": now + 3600]]),
                ("doomed", ["value": "doomed-value"]),
                ("to-disable", ["value": "to-disable-value"]),
            ]
            for (name, body) in puts {
                #expect(try await emulator.callVault(.put, vault: "demo", path: "secrets/\(name)", json: body) == 200)
            }
            let listed = try await listing(mount.path("secrets"))
            #expect(
                Set(puts.map { $0.0 }).isSubset(of: listed), "expired and not-yet-valid secrets are listed: \(listed)")
            #expect(try await mount.read("secrets/expired-secret") == "expired-value")
            #expect(try await mount.read("secrets/future-secret") == "future-value")
            let expires = try await extendedAttribute(mount.path("secrets/expired-secret"), "user.expires")
            #expect(expires.flatMap { ISO8601DateFormatter().date(from: $0) }.map { $0 < Date() } == true)
            let notBefore = try await extendedAttribute(mount.path("secrets/future-secret"), "user.not_before")
            #expect(notBefore.flatMap { ISO8601DateFormatter().date(from: $0) }.map { $0 > Date() } == true)

            // Deleted and disabled while being read: ENOENT once revalidated, then no longer listed.
            #expect(try await mount.read("secrets/doomed") == "doomed-value")
            #expect(try await mount.read("secrets/to-disable") == "to-disable-value")
            #expect(try await emulator.callVault(.delete, vault: "demo", path: "secrets/doomed") == 200)
            let disable = ["attributes": ["enabled": false]]
            #expect(
                try await emulator.callVault(.patch, vault: "demo", path: "secrets/to-disable", json: disable) == 200)
            for name in ["doomed", "to-disable"] {
                #expect(try await Self.eventually { try await contents(mount.path("secrets/\(name)")).error == ENOENT })
            }
            #expect(
                try await Self.eventually {
                    try await listing(mount.path("secrets")).isDisjoint(with: ["doomed", "to-disable"])
                })
            #expect(try await listing(mount.path("secrets/.versions/to-disable")).isEmpty)

            // A new object reads by name at once; one looked up while missing is remembered as
            // missing for --negative-ttl; ls shows both once its listing is revalidated.
            #expect(
                try await emulator.callVault(.put, vault: "demo", path: "secrets/brand-new", json: ["value": "new"])
                    == 200)
            #expect(try await mount.read("secrets/brand-new") == "new")
            let missingAt = ContinuousClock.now
            #expect(try await contents(mount.path("secrets/later")).error == ENOENT)
            #expect(
                try await emulator.callVault(.put, vault: "demo", path: "secrets/later", json: ["value": "later"])
                    == 200)
            let stillMissing = try await contents(mount.path("secrets/later")).error
            if ContinuousClock.now - missingAt < .milliseconds(900) {
                #expect(stillMissing == ENOENT, "a name found missing is remembered as missing")
            }
            #expect(try await Self.eventually { try await contents(mount.path("secrets/later")).text == "later" })
            #expect(
                try await Self.eventually {
                    try await listing(mount.path("secrets")).isSuperset(of: ["brand-new", "later"])
                })
        }
    }

    /// Whether `condition` holds within `seconds`, asked every 100 ms.
    static func eventually(seconds: Int = 8, _ condition: () async throws -> Bool) async throws -> Bool {
        let started = ContinuousClock.now
        while ContinuousClock.now - started < .seconds(seconds) {
            if try await condition() { return true }
            try await Task.sleep(for: .milliseconds(100))
        }
        return try await condition()
    }
}

// MARK: The document

/// A body row of a table in docs/semantics.md: each cell's first code span (the whole cell,
/// trimmed, when it has none), with `\|` read as `|`.
struct DocumentRow: Sendable, CustomStringConvertible {
    var line: Int
    var cells: [String]
    var description: String { "docs/semantics.md:\(line) | \(cells.prefix(3).joined(separator: " | ")) |" }
}

enum SemanticsDocument {
    static var path: String {
        repositoryFile("docs/semantics.md").path
    }

    /// The body rows of every table whose header starts with `header`.
    static func rows(under header: [String]) throws -> [DocumentRow] {
        let lines = try String(contentsOfFile: path, encoding: .utf8).split(
            separator: "\n", omittingEmptySubsequences: false)
        var rows: [DocumentRow] = []
        var inTable = false
        for (index, line) in lines.enumerated() {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            guard trimmed.hasPrefix("|") else {
                inTable = false
                continue
            }
            let cells = split(trimmed)
            if cells.allSatisfy({ $0.allSatisfy { "-: ".contains($0) } }) { continue }
            if Array(cells.prefix(header.count)) == header {
                inTable = true
            } else if inTable {
                rows.append(DocumentRow(line: index + 1, cells: cells.map(code)))
            }
        }
        return rows
    }

    /// A table line's cells, split at pipes that are not escaped.
    static func split(_ line: String) -> [String] {
        var cells: [String] = []
        var cell = ""
        var characters = line.dropFirst()[...]
        while let character = characters.popFirst() {
            if character == "\\", characters.first == "|" {
                cell.append(characters.removeFirst())
            } else if character == "|" {
                cells.append(cell.trimmingCharacters(in: .whitespaces))
                cell = ""
            } else {
                cell.append(character)
            }
        }
        return cells
    }

    static func code(_ cell: String) -> String {
        let parts = cell.split(separator: "`", omittingEmptySubsequences: false)
        return parts.count >= 3 ? String(parts[1]) : cell
    }
}

/// `OK`, or an errno by its name.
enum Answer: Equatable, Sendable, CustomStringConvertible {
    case ok
    case error(Int32)

    static let names: [String: Int32] = [
        "EPERM": EPERM, "ENOENT": ENOENT, "EIO": EIO, "EBADF": EBADF, "EACCES": EACCES, "EBUSY": EBUSY,
        "EEXIST": EEXIST, "EXDEV": EXDEV, "ENOTDIR": ENOTDIR, "EISDIR": EISDIR, "EINVAL": EINVAL, "ENOTTY": ENOTTY,
        "EROFS": EROFS, "ERANGE": ERANGE, "ENAMETOOLONG": ENAMETOOLONG, "ENOSYS": ENOSYS, "ENOTEMPTY": ENOTEMPTY,
        "ENODATA": ENODATA, "EOPNOTSUPP": EOPNOTSUPP, "ETIMEDOUT": ETIMEDOUT, "ENOTCONN": ENOTCONN,
    ]

    init?(_ text: String) {
        if text == "OK" {
            self = .ok
        } else if let code = Self.names[text] {
            self = .error(code)
        } else {
            return nil
        }
    }

    init(errno code: Int32) {
        self = code == 0 ? .ok : .error(code)
    }

    var description: String {
        switch self {
        case .ok: "OK"
        case .error(let code):
            Self.names.first { $0.value == code }?.key ?? "errno \(code) (\(String(cString: strerror(code))))"
        }
    }
}

/// What performing a row gave: the answer, and what was wrong with a successful one.
struct Performed: Sendable {
    var answer: Answer
    var problem: String?

    static let ok = Performed(answer: .ok)

    /// The answer of a call that returns -1 and sets errno on failure.
    static func of(_ result: Int) -> Performed {
        Performed(answer: result < 0 ? .error(errno) : .ok)
    }

    static func of(_ result: Int32) -> Performed { of(Int(result)) }

    static func failing(_ code: Int32) -> Performed { Performed(answer: .error(code)) }
}

struct WalkError: Error, CustomStringConvertible {
    var description: String
}

// MARK: Performing rows

/// Performs the rows of the operation tables on a mount of the demo vault, with blocking calls.
struct OperationWalker: Sendable {
    let mountpoint: String
    /// A directory on another filesystem, for renames and links out of the mount.
    let outside: String

    static let missingVersion = "0123456789abcdef0123456789abcdef"

    /// What `readdir` lists (after `.` and `..`), by path inside the mount; version directories
    /// list this many version ids.
    static let listings: [String: [String]] = [
        "": ["certs", "keys", "secrets", "tls"],
        "secrets": [".versions", "api-key", "api-tls", "app-settings", "database-password", "web-tls"],
        "keys": [".versions", "api-tls", "ec-signing-key", "signing-key", "web-tls"],
        "certs": [".versions", "api-tls", "web-tls"],
        "tls": ["api-tls", "web-tls"],
        "secrets/.versions": ["api-key", "api-tls", "app-settings", "database-password", "web-tls"],
        "tls/api-tls": ["cert.pem", "chain.pem", "fullchain.pem", "key.pem"],
        "tls/no-such-secret": ["cert.pem", "chain.pem", "fullchain.pem", "key.pem"],
    ]
    static let versionCounts = [
        "secrets/.versions/database-password": 2, "keys/.versions/signing-key": 1, "certs/.versions/web-tls": 1,
    ]

    /// Whether `text` is what reading the file at `relative` gives.
    static func contentMatches(_ relative: String, _ text: String) -> Bool? {
        let certificates = text.components(separatedBy: "-----BEGIN CERTIFICATE-----").count - 1
        switch relative {
        case "secrets/api-key": return text == "demo-api-key-8c2f5e"
        case "keys/signing-key": return text.hasPrefix("-----BEGIN PUBLIC KEY-----")
        case "certs/web-tls": return text.hasPrefix("-----BEGIN CERTIFICATE-----") && certificates == 1
        case "tls/api-tls/fullchain.pem": return certificates == 3
        case _ where relative.hasPrefix("secrets/.versions/database-password/"):
            return ["initial-password-1", "correct-horse-battery-staple"].contains(text)
        default: return nil
        }
    }

    /// A documented path (relative, placeholders in capitals) on this mount; whether it names a
    /// directory, and its path inside the mount.
    func resolve(_ documented: String) throws -> (path: String, relative: String, directory: Bool) {
        let directory = documented.hasSuffix("/")
        let segments = documented.split(separator: "/").map(String.init)
        var resolved: [String] = []
        for segment in segments {
            guard Self.isPlaceholder(segment) else {
                resolved.append(segment)
                continue
            }
            switch segment {
            case "NAME":
                switch (segments.first, segments.contains(".versions")) {
                case ("secrets", true): resolved.append("database-password")
                case ("secrets", false): resolved.append("api-key")
                case ("keys", _): resolved.append("signing-key")
                case ("certs", _): resolved.append("web-tls")
                case ("tls", _): resolved.append("api-tls")
                default: throw WalkError(description: "no NAME for \(documented)")
                }
            case "VERSION":
                let parent = ([mountpoint] + resolved).joined(separator: "/")
                let versions = try FileManager.default.contentsOfDirectory(atPath: parent).sorted()
                guard let first = versions.first else { throw WalkError(description: "\(parent) lists no version") }
                resolved.append(first)
            case "MISSING-VERSION": resolved.append(Self.missingVersion)
            case "MISSING": resolved.append("no-such-secret")
            case "DISABLED": resolved.append("retired-token")
            case "OTHER-CASE": resolved.append("API-KEY")
            case "NOT-A-CERT": resolved.append("api-key")
            default: throw WalkError(description: "the test knows no placeholder \(segment) (in \(documented))")
            }
        }
        let relative = resolved.joined(separator: "/")
        return (relative.isEmpty ? mountpoint : "\(mountpoint)/\(relative)", relative, directory)
    }

    /// Capitals, digits and dashes, with at least two capitals: a placeholder, not a literal name.
    static func isPlaceholder(_ segment: String) -> Bool {
        segment.unicodeScalars.filter { CharacterSet.uppercaseLetters.contains($0) }.count >= 2
            && segment.unicodeScalars.allSatisfy {
                CharacterSet.uppercaseLetters.contains($0) || CharacterSet.decimalDigits.contains($0) || $0 == "-"
            }
    }

    /// Performs `operation` (as the table's first column writes it) on `documentedPath`.
    func perform(_ operation: String, on documentedPath: String) throws -> Performed {
        let suffix = " as another user"
        if operation.hasSuffix(suffix) {
            return try asAnotherUser { try perform(String(operation.dropLast(suffix.count)), on: documentedPath) }
        }
        let target = try resolve(documentedPath)
        let path = target.path
        var name = operation
        var argument = ""
        if let open = operation.firstIndex(of: "("), operation.hasSuffix(")") {
            name = String(operation[..<open])
            argument = String(operation[operation.index(after: open)..<operation.index(before: operation.endIndex)])
        }
        switch (name, argument) {
        case ("stat", ""):
            var buffer = stat()
            guard stat(path, &buffer) == 0 else { return .failing(errno) }
            let isDirectory = buffer.st_mode & S_IFMT == S_IFDIR
            guard isDirectory == target.directory else {
                return Performed(answer: .ok, problem: isDirectory ? "a directory, not a file" : "not a directory")
            }
            return .ok
        case ("access", _):
            let modes = ["F_OK": F_OK, "R_OK": R_OK, "W_OK": W_OK, "X_OK": X_OK]
            guard let mode = modes[argument] else { break }
            return .of(access(path, mode))
        case ("readdir", ""):
            return readDirectory(path, target.relative)
        case ("open", _):
            return try open(path, flags: argument, target)
        case ("read", ""):
            return withDescriptor(path) { descriptor in
                let (bytes, error) = Self.readAll(descriptor)
                if error != 0 { return .failing(error) }
                return checkContent(bytes, of: target.relative, descriptor: descriptor)
            }
        case ("pread", "5 bytes at offset 5"), ("pread", "past the end"):
            return withDescriptor(path) { descriptor in
                let (whole, _) = Self.readAll(descriptor)
                let offset = argument == "past the end" ? whole.count + 10 : 5
                var buffer = [UInt8](repeating: 0, count: 5)
                let count = pread(descriptor, &buffer, 5, off_t(offset))
                guard count >= 0 else { return .failing(errno) }
                let expected = Array(whole.dropFirst(offset).prefix(5))
                return Array(buffer.prefix(count)) == expected
                    ? .ok : Performed(answer: .ok, problem: "read \(count) bytes, not \(expected.count) of the value")
            }
        case ("mmap", "PROT_READ, MAP_SHARED"), ("mmap", "PROT_READ, MAP_PRIVATE"), ("mmap", "PROT_WRITE, MAP_SHARED"),
            ("mmap", "PROT_WRITE, MAP_PRIVATE"):
            return mapping(path, argument)
        case ("write", ""):
            return withDescriptor(path) { .of(Glibc.write($0, "x", 1)) }
        case ("ftruncate", ""):
            return withDescriptor(path) { .of(ftruncate($0, 0)) }
        case ("posix_fallocate", ""):
            return withDescriptor(path) { Performed(answer: Answer(errno: posix_fallocate($0, 0, 10))) }
        case ("truncate", ""):
            return .of(truncate(path, 0))
        case ("mkdir", ""):
            return .of(mkdir(path, 0o700))
        case ("rmdir", ""):
            return .of(rmdir(path))
        case ("unlink", ""):
            return .of(unlink(path))
        case ("rename", _), ("link", _):
            let destination: String
            if argument == "out of the mount" {
                destination = "\(outside)/moved"
            } else if argument.hasPrefix("to ") {
                destination = try resolve(String(argument.dropFirst(3))).path
            } else {
                break
            }
            return .of(name == "rename" ? rename(path, destination) : link(path, destination))
        case ("symlink", ""):
            return .of(symlink("api-key", path))
        case ("mknod", "S_IFIFO"):
            return .of(mknod(path, S_IFIFO | 0o600, 0))
        case ("readlink", ""):
            var buffer = [CChar](repeating: 0, count: 256)
            return .of(readlink(path, &buffer, buffer.count))
        case ("chmod", ""):
            return .of(chmod(path, target.directory ? 0o755 : 0o644))
        case ("chown", ""):
            return .of(chown(path, getuid(), getgid()))
        case ("utimensat", "now"):
            return .of(utimensat(AT_FDCWD, path, nil, 0))
        case ("utimensat", "times"):
            let times = [timespec(tv_sec: 1_000_000_000, tv_nsec: 0), timespec(tv_sec: 1_000_000_000, tv_nsec: 0)]
            return .of(utimensat(AT_FDCWD, path, times, 0))
        case ("listxattr", ""), ("listxattr", "1-byte buffer"):
            var buffer = [CChar](repeating: 0, count: argument.isEmpty ? 4096 : 1)
            let length = listxattr(path, &buffer, buffer.count)
            guard length >= 0 else { return .failing(errno) }
            let names = Set(
                buffer[..<length].split(separator: 0).map { String(decoding: $0.map(UInt8.init), as: UTF8.self) })
            let expected: Set<String> = target.directory ? [] : ["user.version", "user.id"]
            guard expected.isSubset(of: names), target.directory == names.isEmpty else {
                return Performed(answer: .ok, problem: "listed \(names.sorted())")
            }
            return .ok
        case ("getxattr", _):
            let parts = argument.components(separatedBy: ", ")
            guard parts.count == 1 || parts.last == "1-byte buffer" else { break }
            var buffer = [UInt8](repeating: 0, count: parts.count == 1 ? 4096 : 1)
            let length = getxattr(path, parts[0], &buffer, buffer.count)
            guard length >= 0 else { return .failing(errno) }
            if parts[0] == "user.version", length != 32 || !buffer[..<length].allSatisfy({ isxdigit(Int32($0)) != 0 }) {
                return Performed(answer: .ok, problem: "user.version is not 32 hex digits")
            }
            return .ok
        case ("setxattr", _):
            return .of(setxattr(path, argument, "1", 1, 0))
        case ("removexattr", _):
            return .of(removexattr(path, argument))
        case ("fsync", ""):
            return withDescriptor(path) { .of(fsync($0)) }
        case ("fdatasync", ""):
            return withDescriptor(path) { .of(fdatasync($0)) }
        case ("flock", "LOCK_SH"), ("flock", "LOCK_EX"):
            return withDescriptor(path) { descriptor in
                defer { _ = flock(descriptor, LOCK_UN) }
                return .of(flock(descriptor, argument == "LOCK_SH" ? LOCK_SH : LOCK_EX))
            }
        case ("fcntl", "F_SETLK, F_RDLCK"), ("fcntl", "F_SETLK, F_WRLCK"), ("fcntl", "F_GETLK"):
            return withDescriptor(path) { descriptor in
                var lock = flock()
                lock.l_type = Int16(argument.hasSuffix("F_WRLCK") ? F_WRLCK : F_RDLCK)
                lock.l_whence = Int16(SEEK_SET)
                return .of(fcntl(descriptor, argument == "F_GETLK" ? F_GETLK : F_SETLK, &lock))
            }
        case ("statvfs", ""):
            var buffer = statvfs()
            guard statvfs(path, &buffer) == 0 else { return .failing(errno) }
            guard buffer.f_flag & UInt(ST_RDONLY) != 0, buffer.f_bsize == 4096, buffer.f_namemax == 255,
                buffer.f_blocks == 0, buffer.f_files > 0
            else {
                return Performed(
                    answer: .ok,
                    problem: "flags \(buffer.f_flag), block size \(buffer.f_bsize), names up to \(buffer.f_namemax), "
                        + "\(buffer.f_blocks) blocks, \(buffer.f_files) files")
            }
            return .ok
        default:
            break
        }
        throw WalkError(description: "the test does not know how to perform `\(operation)`")
    }

    /// `body`'s answer on a descriptor of `path` opened read-only, or why opening failed.
    private func withDescriptor(_ path: String, _ body: (Int32) -> Performed) -> Performed {
        let descriptor = Glibc.open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { return .failing(errno) }
        defer { close(descriptor) }
        return body(descriptor)
    }

    static func readAll(_ descriptor: Int32) -> (bytes: [UInt8], error: Int32) {
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = read(descriptor, &chunk, chunk.count)
            if count < 0 { return (bytes, errno) }
            if count == 0 { return (bytes, 0) }
            bytes += chunk[..<count]
        }
    }

    /// A successful read of the whole file: `st_size` bytes, and the content the vault has.
    private func checkContent(_ bytes: [UInt8], of relative: String, descriptor: Int32) -> Performed {
        var buffer = stat()
        fstat(descriptor, &buffer)
        guard bytes.count == Int(buffer.st_size) else {
            return Performed(answer: .ok, problem: "read \(bytes.count) bytes; stat says \(buffer.st_size)")
        }
        switch Self.contentMatches(relative, String(decoding: bytes, as: UTF8.self)) {
        case true: return .ok
        case false: return Performed(answer: .ok, problem: "read something else than the vault's content")
        case nil: return Performed(answer: .ok, problem: "the test knows no expected content for \(relative)")
        }
    }

    private func open(_ path: String, flags text: String, _ target: (path: String, relative: String, directory: Bool))
        throws -> Performed
    {
        // O_DIRECT and O_TMPFILE are not imported by Swift's Glibc module.
        #if arch(x86_64)
            let direct: Int32 = 0o40000
        #else
            let direct: Int32 = 0o200000
        #endif
        let known: [String: Int32] = [
            "O_RDONLY": O_RDONLY, "O_WRONLY": O_WRONLY, "O_RDWR": O_RDWR, "O_CREAT": O_CREAT, "O_EXCL": O_EXCL,
            "O_TRUNC": O_TRUNC, "O_DIRECTORY": O_DIRECTORY, "O_DIRECT": direct, "O_TMPFILE": 0o20000000 | O_DIRECTORY,
        ]
        var flags: Int32 = 0
        for flag in text.split(separator: "|") {
            guard let value = known[String(flag)] else {
                throw WalkError(description: "the test knows no open flag \(flag)")
            }
            flags |= value
        }
        let descriptor = Glibc.open(path, flags | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else { return .failing(errno) }
        defer { close(descriptor) }
        guard flags & direct != 0 else { return .ok }
        // Direct reads reach akvfs: the same bytes as through the page cache.
        let (bytes, error) = Self.readAll(descriptor)
        if error != 0 { return Performed(answer: .ok, problem: "reading failed: \(Answer(errno: error))") }
        return checkContent(bytes, of: target.relative, descriptor: descriptor)
    }

    private func readDirectory(_ path: String, _ relative: String) -> Performed {
        guard let directory = opendir(path) else { return .failing(errno) }
        defer { closedir(directory) }
        var names: [String] = []
        while true {
            errno = 0
            guard let entry = readdir(directory) else { break }
            names.append(
                withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) })
        }
        if errno != 0 { return .failing(errno) }
        guard names.prefix(2) == [".", ".."] else {
            return Performed(answer: .ok, problem: "listed \(names), not starting with . and ..")
        }
        let entries = Array(names.dropFirst(2))
        if let expected = Self.listings[relative] {
            return entries == expected ? .ok : Performed(answer: .ok, problem: "listed \(entries), not \(expected)")
        }
        if let count = Self.versionCounts[relative] {
            let wellFormed = entries.allSatisfy { $0.count == 32 && $0.allSatisfy(\.isHexDigit) }
            return entries.count == count && wellFormed && entries == entries.sorted()
                ? .ok : Performed(answer: .ok, problem: "listed \(entries), not \(count) version ids in order")
        }
        return Performed(answer: .ok, problem: "the test knows no expected listing for \(relative)")
    }

    private func mapping(_ path: String, _ argument: String) -> Performed {
        let writable = argument.hasPrefix("PROT_WRITE")
        let shared = argument.hasSuffix("MAP_SHARED")
        return withDescriptor(path) { descriptor in
            let (content, _) = Self.readAll(descriptor)
            let protection = PROT_READ | (writable ? PROT_WRITE : 0)
            guard let address = mmap(nil, content.count, protection, shared ? MAP_SHARED : MAP_PRIVATE, descriptor, 0),
                address != MAP_FAILED
            else { return .failing(errno) }
            let mapped = Array(UnsafeRawBufferPointer(start: address, count: content.count))
            if writable { address.storeBytes(of: UInt8(ascii: "X"), as: UInt8.self) }
            munmap(address, content.count)
            guard mapped == content else { return Performed(answer: .ok, problem: "the mapping is not the value") }
            // A private mapping's writes never reach the file.
            let (after, _) = readFile(path)
            return after == content
                ? .ok : Performed(answer: .ok, problem: "the file changed through a private mapping")
        }
    }

    private func readFile(_ path: String) -> ([UInt8], Int32) {
        let descriptor = Glibc.open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { return ([], errno) }
        defer { close(descriptor) }
        return Self.readAll(descriptor)
    }

    /// Runs `body` on this thread as uid and gid 65534 for file access (setfsuid(2) changes
    /// only the calling thread, and drops root's capabilities to bypass modes meanwhile).
    private func asAnotherUser(_ body: () throws -> Performed) throws -> Performed {
        typealias SetID = @convention(c) (UInt32) -> Int32
        guard let setUser = dlsym(nil, "setfsuid"), let setGroup = dlsym(nil, "setfsgid") else {
            throw WalkError(description: "setfsuid and setfsgid are not available")
        }
        let (user, group) = (unsafeBitCast(setUser, to: SetID.self), unsafeBitCast(setGroup, to: SetID.self))
        _ = group(65534)
        _ = user(65534)
        defer {
            _ = user(getuid())
            _ = group(getgid())
        }
        return try body()
    }
}

// MARK: Failures

/// A row of the table of Key Vault's failures: the fault to inject, and the two secrets it is
/// injected for (one never read, one read before).
struct FailureCase: Sendable {
    var row: DocumentRow
    var action: [String: any Sendable]
    var neverReadAnswer: Answer
    var alreadyReadAnswer: Answer
    var neverRead: String
    var alreadyRead: String

    init(_ row: DocumentRow) throws {
        guard row.cells.count >= 3 else { throw WalkError(description: "a row needs three cells") }
        self.row = row
        let answer = row.cells[0]
        switch answer {
        case "hang": action = ["action": "hang", "hangSeconds": 30]
        case "drop": action = ["action": "drop"]
        default:
            guard let status = Int(answer), (400...599).contains(status) else {
                throw WalkError(description: "the test knows no Key Vault answer `\(answer)`")
            }
            action = ["action": "status", "status": status]
        }
        guard let never = Answer(row.cells[1]), let already = Answer(row.cells[2]) else {
            throw WalkError(description: "'\(row.cells[1])' or '\(row.cells[2])' is neither OK nor an errno name")
        }
        neverReadAnswer = never
        alreadyReadAnswer = already
        neverRead = "never-read-\(answer)"
        alreadyRead = "already-read-\(answer)"
    }
}

// MARK: Blocking helpers

/// The file's content, or the errno opening or reading it failed with (0 when it worked).
func contents(_ path: String) async throws -> (text: String?, error: Int32) {
    try await onOwnThread {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { return (nil, errno) }
        defer { close(descriptor) }
        let (bytes, error) = OperationWalker.readAll(descriptor)
        return error == 0 ? (String(decoding: bytes, as: UTF8.self), 0) : (nil, error)
    }
}

/// The names a directory lists, without `.` and `..`.
func listing(_ path: String) async throws -> Set<String> {
    try await onOwnThread { Set(try FileManager.default.contentsOfDirectory(atPath: path)) }
}

/// An extended attribute's value; nil when the file has none of that name.
func extendedAttribute(_ path: String, _ name: String) async throws -> String? {
    try await onOwnThread {
        var buffer = [UInt8](repeating: 0, count: 4096)
        let length = getxattr(path, name, &buffer, buffer.count)
        if length < 0 && errno == ENODATA { return nil }
        guard length >= 0 else { throw TestFailure("getxattr \(name): \(String(cString: strerror(errno)))") }
        return String(decoding: buffer[..<length], as: UTF8.self)
    }
}
