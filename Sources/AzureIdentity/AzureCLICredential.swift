import FoundationEssentials
import Subprocess
import SystemPackage

/// The account signed in with the Azure CLI (`az login`), for developers' machines. Runs
/// `az account get-access-token`; the token never passes through argv, only stdout.
public struct AzureCLICredential: TokenCredential {
    private let tenantId: String?
    private let searchPath: String
    private let timeout: Duration
    private let now: @Sendable () -> Date

    /// `searchPath` is where `az` is looked for (PATH of this process by default).
    public init(
        tenantId: String? = nil,
        searchPath: String? = nil,
        timeout: Duration = .seconds(10),
        now: @escaping @Sendable () -> Date = { Date() }
    ) {
        self.tenantId = tenantId
        self.searchPath = searchPath ?? ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
        self.timeout = timeout
        self.now = now
    }

    public var name: String { "AzureCLICredential" + (tenantId.map { " (tenant \($0))" } ?? "") }

    private func failure(_ kind: CredentialError.Kind, _ message: String) -> CredentialError {
        CredentialError(credential: "AzureCLICredential", kind: kind, message: message)
    }

    public func getToken(_ context: TokenRequestContext) async throws(CredentialError) -> AccessToken {
        guard let executable = locate("az") else {
            throw failure(.unavailable, "the Azure CLI ('az') is not on PATH")
        }
        var arguments = ["account", "get-access-token", "--output", "json", "--resource", context.resource]
        if let tenant = context.tenantId ?? tenantId {
            guard EntraAuthority.isValidTenant(tenant) else {
                throw failure(.invalidConfiguration, "invalid tenant '\(tenant)'")
            }
            arguments += ["--tenant", tenant]
        }
        let outcome: (status: TerminationStatus, output: String, errors: String)
        do {
            outcome = try await runWithTimeout(executable, arguments)
        } catch let error as CredentialError {
            throw error
        } catch {
            throw failure(.transient, "running \(executable) failed: \(error)")
        }
        guard case .exited(0) = outcome.status else {
            let reason = Self.reason(in: outcome.errors)
            if outcome.errors.contains("az login") || outcome.errors.contains("az account set") {
                throw failure(.unavailable, "not signed in to the Azure CLI; run 'az login' (\(reason))")
            }
            throw failure(.authenticationFailed, "'az account get-access-token' failed (\(outcome.status)): \(reason)")
        }
        guard let token = parse(outcome.output) else {
            throw failure(.transient, "'az account get-access-token' printed no usable accessToken and expiry")
        }
        return token
    }

    private func runWithTimeout(_ executable: String, _ arguments: [String]) async throws -> (
        status: TerminationStatus, output: String, errors: String
    ) {
        let timeout = self.timeout
        return try await withThrowingTaskGroup { group in
            group.addTask {
                let result = try await run(
                    .path(FilePath(executable)),
                    arguments: Arguments(arguments),
                    environment: .inherit.updating(["AZURE_CORE_NO_COLOR": "true", "PATH": searchPath]),
                    workingDirectory: FilePath("/"),
                    output: .string(limit: 1 << 20),
                    error: .string(limit: 1 << 16)
                )
                return (result.terminationStatus, result.standardOutput, result.standardError)
            }
            group.addTask {
                try await Task.sleep(for: timeout)
                throw CredentialError(
                    credential: "AzureCLICredential", kind: .transient,
                    message: "'az account get-access-token' did not finish within \(timeout)")
            }
            defer { group.cancelAll() }
            return try await group.next()!
        }
    }

    /// The line of az's error output that says what went wrong: its `ERROR:` line, or after a
    /// Python traceback (which az introduces with "The command failed with an unexpected error.
    /// Here is the traceback:") the exception at its end, never the boilerplate around them.
    static func reason(in errors: String) -> String {
        let lines = errors.split(whereSeparator: \.isNewline)
            .map { String($0.drop(while: \.isWhitespace).reversed().drop(while: \.isWhitespace).reversed()) }
            .filter { !$0.isEmpty }
        if let error = lines.first(where: { $0.hasPrefix("ERROR:") }), error.count > "ERROR:".count + 1,
            !error.contains("The command failed with an unexpected error")
        {
            return error
        }
        let boilerplate = [
            "The command failed with an unexpected error", "To check existing issues", "To open a new issue",
            "https://aka.ms/", "WARNING:",
        ]
        let meaningful = lines.filter { line in !boilerplate.contains { line.hasPrefix($0) || line.contains($0) } }
        if lines.contains(where: { $0.hasPrefix("Traceback") || $0.contains("Here is the traceback") }),
            let exception = meaningful.last(where: {
                !$0.hasPrefix("File \"") && !$0.hasPrefix("Traceback") && !$0.hasPrefix("^")
            })
        {
            return exception
        }
        return meaningful.first ?? lines.first ?? "no error output"
    }

    /// `expires_on` (POSIX seconds, CLI 2.54+) is preferred; older CLIs only print `expiresOn`
    /// as local time `YYYY-MM-DD HH:MM:SS.ffffff`.
    private func parse(_ output: String) -> AccessToken? {
        struct Output: Decodable {
            var accessToken: String
            var expiresOnPOSIX: HTTPSupport.FlexibleNumber?
            var expiresOn: String?
            enum CodingKeys: String, CodingKey {
                case accessToken
                case expiresOnPOSIX = "expires_on"
                case expiresOn
            }
        }
        guard let parsed = try? JSONDecoder().decode(Output.self, from: Data(output.utf8)), !parsed.accessToken.isEmpty
        else { return nil }
        let issuedAt = now()
        if let posix = parsed.expiresOnPOSIX {
            return AccessToken(
                token: parsed.accessToken, expiresOn: Date(timeIntervalSince1970: posix.value), issuedAt: issuedAt)
        }
        guard let text = parsed.expiresOn, let local = Self.parseLocalTime(text) else { return nil }
        return AccessToken(token: parsed.accessToken, expiresOn: local, issuedAt: issuedAt)
    }

    static func parseLocalTime(_ text: String) -> Date? {
        let parts = text.split(whereSeparator: { $0 == " " || $0 == "-" || $0 == ":" || $0 == "." }).compactMap {
            Int($0)
        }
        guard parts.count >= 6 else { return nil }
        var components = DateComponents()
        (components.year, components.month, components.day) = (parts[0], parts[1], parts[2])
        (components.hour, components.minute, components.second) = (parts[3], parts[4], parts[5])
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone.current
        return calendar.date(from: components)
    }

    private func locate(_ program: String) -> String? {
        for directory in searchPath.split(separator: ":") where !directory.isEmpty {
            let candidate = "\(directory)/\(program)"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }
}
