import ArgumentParser
import AzureIdentity
import CommandLineSupport
import KeyVault
import PKI

/// `akvfs check`: can this machine, as this identity, read this vault?
struct CheckCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Check that akvfs can authenticate and read a vault.",
        discussion: """
            Reports the credential used, the identity and tenant its token names, whether listing secrets, keys \
            and certificates works, and whether getting an object works (the OBJECTs given, or the first enabled \
            secret listed). Values are never printed. Exits non-zero when anything fails.

            Example: akvfs check myvault secrets/db-password
            """
    )

    @Argument(help: "Vault name (with --cloud) or URL.")
    var vault: String

    @Argument(help: ArgumentHelp("Objects to try to get: secrets|keys|certs/NAME[/VERSION].", valueName: "object"))
    var objects: [String] = []

    @Flag(help: "Do not try listing (for identities allowed to get but not to list).")
    var noList = false

    @OptionGroup(title: "Vault") var connection: ConnectionOptions
    @OptionGroup(title: "Identity") var identity: IdentityOptions

    func validate() throws {
        for object in objects { _ = try ObjectPath(object) }
    }

    func run() async throws {
        LogSetup.bootstrap()
        let session = try VaultSession(vault: vault, connection: connection, identity: identity)
        defer { session.shutdown() }
        let client = session.client
        Terminal.line("vault:       \(client.vault.url) (\(session.cloud.name))")
        var failures = 0

        var secretToTry: String?
        if !noList {
            for (label, list) in [
                (
                    "secrets",
                    { () async throws(KeyVaultError) -> [(String, Bool)] in
                        try await client.listSecrets().map {
                            ($0.name, $0.attributes?.isEnabled ?? true && !($0.managed ?? false))
                        }
                    }
                ),
                (
                    "keys",
                    { () async throws(KeyVaultError) -> [(String, Bool)] in
                        try await client.listKeys().map { ($0.name, true) }
                    }
                ),
                (
                    "certs",
                    { () async throws(KeyVaultError) -> [(String, Bool)] in
                        try await client.listCertificates().map { ($0.name, true) }
                    }
                ),
            ] {
                do {
                    let names = try await list()
                    Terminal.line("list \(label.padding(8)) ok (\(names.count))")
                    if label == "secrets" { secretToTry = names.first(where: \.1)?.0 }
                } catch {
                    failures += 1
                    Terminal.line("list \(label.padding(8)) FAILED: \(error)")
                    if error.kind == .credential || error.kind == .challengeRejected || error.kind == .configuration {
                        break
                    }
                }
            }
        }

        var targets = try objects.map { try ObjectPath($0) }
        if targets.isEmpty, let secretToTry { targets = [try ObjectPath("secrets/\(secretToTry)")] }
        for target in targets {
            let label = "\(target.collection.rawValue)/\(target.name)" + (target.version.map { "/\($0)" } ?? "")
            do {
                switch target.collection {
                case .secrets:
                    let bundle = try await client.getSecret(target.name, version: target.version)
                    Terminal.line(
                        "get  \(label) ok (version \(bundle.version ?? "?"), \(bundle.value?.utf8.count ?? 0) bytes)")
                case .keys:
                    let bundle = try await client.getKey(target.name, version: target.version)
                    Terminal.line("get  \(label) ok (version \(bundle.version ?? "?"), \(bundle.key.kty))")
                case .certs:
                    let bundle = try await client.getCertificate(target.name, version: target.version)
                    Terminal.line("get  \(label) ok (version \(bundle.version ?? "?"))")
                }
            } catch {
                failures += 1
                Terminal.line("get  \(label) FAILED: \(error)")
            }
        }
        if targets.isEmpty && noList {
            Terminal.line("get  (nothing to try: name an object, e.g. secrets/NAME)")
        }

        await reportIdentity(session)
        if failures > 0 {
            Terminal.error("akvfs: check failed: \(failures) of the checks above failed.")
            throw ExitCode.failure
        }
    }

    /// Who the token speaks for, read from the (cached) token the checks used.
    private func reportIdentity(_ session: VaultSession) async {
        Terminal.line("credential:  \(session.credentialInUse.name)")
        guard let challenge = session.client.currentChallenge,
            let token = try? await session.credential.getToken(
                TokenRequestContext(scope: challenge.scope, tenantId: challenge.tenantId))
        else {
            Terminal.line("identity:    unknown (no token was obtained)")
            return
        }
        let claims = TokenClaims(token: token)
        Terminal.line(
            "identity:    application \(claims?.applicationId ?? "?"), object \(claims?.objectId ?? "?")"
                + (claims?.managedIdentityResourceId.map { ", managed identity \($0)" } ?? ""))
        Terminal.line("tenant:      \(claims?.tenantId ?? challenge.tenantId ?? "?")")
        Terminal.line("token:       for \(challenge.scope), expires \(token.expiresOn)")
    }
}

extension String {
    func padding(_ width: Int) -> String {
        count >= width ? self : self + String(repeating: " ", count: width - count)
    }
}
