import AzureIdentity
import EmulatorSupport
import Foundation
import HTTPTransport
import HTTPTypes
import KeyVault
import KeyVaultEmulator
import PKI
import TestSupport
import Testing

@Suite("Credentials against the emulator")
struct CredentialTests {
    static let secretApp = "5ec7e700-0000-4000-8000-000000000001"
    static let certificateApp = "5ec7e700-0000-4000-8000-000000000002"
    static let workloadApp = "5ec7e700-0000-4000-8000-000000000003"
    static let userAssigned = "5ec7e700-0000-4000-8000-0000000000a1"

    static func seed(certificatePEM: String = "") -> Seed {
        var identities = [
            SeedIdentity(
                name: "secret-app", type: .servicePrincipal, clientId: secretApp, clientSecret: "the-right-secret"),
            SeedIdentity(
                name: "workload-app", type: .servicePrincipal, clientId: workloadApp,
                federatedSubjects: ["system:serviceaccount:apps:reader"]),
            SeedIdentity(name: "node", type: .managedIdentity, systemAssigned: true),
            SeedIdentity(name: "uami", type: .managedIdentity, clientId: userAssigned),
        ]
        if !certificatePEM.isEmpty {
            identities.append(
                SeedIdentity(
                    name: "cert-app", type: .servicePrincipal, clientId: certificateApp, certificate: certificatePEM))
        }
        return Seed(
            allowUnknownIdentities: false,
            identities: identities,
            vaults: [SeedVault(name: "identity-vault", secrets: [SeedSecret(name: "probe", value: "probe-value")])]
        )
    }

    /// Reads the probe secret with `credential` and returns the identity the vault saw.
    static func readProbe(_ harness: EmulatorHarness, _ credential: any TokenCredential) async throws -> LoggedRequest
        .Identity?
    {
        let client = try harness.client("identity-vault", credential: credential)
        #expect(try await client.getSecret("probe").value == "probe-value")
        return await harness.keyVaultRequests("identity-vault").last { $0.status == 200 }?.identity
    }

    /// The name of the identity the vault saw reading the probe secret.
    static func probeIdentity(_ harness: EmulatorHarness, _ credential: any TokenCredential) async throws -> String? {
        try await readProbe(harness, credential)?.name
    }

    /// Writes a script with O_CLOEXEC, so that no process spawned meanwhile keeps a write
    /// descriptor to it (which would make running it fail with ETXTBSY for that process's life).
    static func writeExecutable(_ path: String, _ text: String) throws {
        unlink(path)
        let descriptor = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o755)
        guard descriptor >= 0 else {
            throw TestFailure("cannot create \(path): \(String(cString: strerror(errno)))")
        }
        defer { close(descriptor) }
        let bytes = Array(text.utf8)
        guard write(descriptor, bytes, bytes.count) == bytes.count else {
            throw TestFailure("cannot write \(path)")
        }
    }

    /// Running a script this test has just written fails with ETXTBSY while a process that a
    /// concurrent test is spawning still holds the inherited write descriptor; it is gone once
    /// that child has exec'd, so a short retry is enough.
    static func retryingTextFileBusy<T>(_ body: () async throws -> T) async throws -> T {
        for _ in 0..<20 {
            do {
                return try await body()
            } catch  where "\(error)".contains("Text file busy") {
                try await Task.sleep(for: .milliseconds(50))
            }
        }
        return try await body()
    }

    @Test("Client secret")
    func clientSecret() async throws {
        try await withEmulator(seed: Self.seed()) { (harness) async throws in
            let credential = ClientSecretCredential(
                authority: harness.authority, clientId: Self.secretApp, secret: "the-right-secret", http: harness.http)
            #expect(try await Self.probeIdentity(harness, credential) == "secret-app")

            let wrong = ClientSecretCredential(
                authority: harness.authority, clientId: Self.secretApp, secret: "a-wrong-secret", http: harness.http)
            await #expect {
                _ = try await harness.client("identity-vault", credential: wrong).getSecret("probe")
            } throws: { error in
                let text = "\(error)"
                return (error as? KeyVaultError)?.kind == .credential && text.contains("AADSTS7000215")
                    && !text.contains("a-wrong-secret")
            }
        }
    }

    @Test("Client certificate from a PEM file and from a PFX file", arguments: [false, true])
    func clientCertificate(pfx: Bool) async throws {
        let key = try PrivateKey.generate(.rsa(bits: 2048))
        let certificate = try CertificateTemplate(
            subject: "CN=cert-app", notBefore: Date(), notAfter: Date().addingTimeInterval(86_400)
        ).selfSigned(with: key)
        try await withEmulator(seed: Self.seed(certificatePEM: certificate.pem())) { (harness) async throws in
            let path: String
            if pfx {
                path = harness.directory.appendingPathComponent("app.pfx").path
                try Data(try PKCS12.create(privateKey: key, certificates: [certificate], password: "pfx-pass")).write(
                    to: URL(fileURLWithPath: path))
            } else {
                path = try harness.file("app.pem", try key.pkcs8PEM() + certificate.pem())
            }
            let credential = ClientCertificateCredential(
                authority: harness.authority, clientId: Self.certificateApp, certificatePath: path,
                password: pfx ? "pfx-pass" : nil, http: harness.http)
            #expect(try await Self.probeIdentity(harness, credential) == "cert-app")

            let other = try PrivateKey.generate(.rsa(bits: 2048))
            let otherCertificate = try CertificateTemplate(
                subject: "CN=other", notBefore: Date(), notAfter: Date().addingTimeInterval(86_400)
            ).selfSigned(with: other)
            let unregistered = try harness.file("other.pem", try other.pkcs8PEM() + otherCertificate.pem())
            let refused = ClientCertificateCredential(
                authority: harness.authority, clientId: Self.certificateApp, certificatePath: unregistered,
                http: harness.http)
            await #expect {
                _ = try await refused.getToken(TokenRequestContext(scope: "\(harness.endpoints.resource)/.default"))
            } throws: { error in
                (error as? CredentialError)?.kind == .authenticationFailed && "\(error)".contains("AADSTS700027")
            }
        }
    }

    @Test("Client certificate: a missing file or an EC key is a configuration error naming the file")
    func certificateConfiguration() async throws {
        try await withEmulator(seed: Self.seed()) { (harness) async throws in
            let missing = ClientCertificateCredential(
                authority: harness.authority, clientId: Self.certificateApp, certificatePath: "/nonexistent/app.pem",
                http: harness.http)
            await #expect {
                _ = try await missing.getToken(TokenRequestContext(scope: "x/.default"))
            } throws: { error in
                (error as? CredentialError)?.kind == .invalidConfiguration
                    && "\(error)".contains("/nonexistent/app.pem")
            }
            let key = try PrivateKey.generate(.ec(.p256))
            let certificate = try CertificateTemplate(
                subject: "CN=ec", notBefore: Date(), notAfter: Date().addingTimeInterval(3600)
            ).selfSigned(with: key)
            let path = try harness.file("ec.pem", try key.pkcs8PEM() + certificate.pem())
            let ec = ClientCertificateCredential(
                authority: harness.authority, clientId: Self.certificateApp, certificatePath: path, http: harness.http)
            await #expect {
                _ = try await ec.getToken(TokenRequestContext(scope: "x/.default"))
            } throws: { error in
                "\(error)".contains("RSA")
            }
        }
    }

    @Test("Workload identity re-reads the token file for every token request")
    func workloadIdentity() async throws {
        try await withEmulator(seed: Self.seed()) { (harness) async throws in
            let tokenFile = try harness.file(
                "token", harness.emulator.serviceAccountToken(subject: "system:serviceaccount:apps:reader") + "\n")
            let credential = WorkloadIdentityCredential(
                authority: harness.authority, clientId: Self.workloadApp, assertion: .file(tokenFile),
                http: harness.http)
            #expect(try await Self.probeIdentity(harness, credential) == "workload-app")
            // Kubelet rotated the file to another service account's token: the next request uses it.
            _ = try harness.file(
                "token", harness.emulator.serviceAccountToken(subject: "system:serviceaccount:apps:intruder"))
            await #expect {
                _ = try await credential.getToken(TokenRequestContext(scope: "\(harness.endpoints.resource)/.default"))
            } throws: { error in
                "\(error)".contains("AADSTS700213")
            }
        }
    }

    @Test("Managed identity through IMDS: system-assigned and user-assigned")
    func imds() async throws {
        try await withEmulator(seed: Self.seed()) { (harness) async throws in
            let system = ManagedIdentityCredential(
                source: .imds(endpoint: harness.endpoints.imdsEndpoint), http: harness.http)
            #expect(try await Self.probeIdentity(harness, system) == "node")
            let user = ManagedIdentityCredential(
                identity: .clientId(Self.userAssigned), source: .imds(endpoint: harness.endpoints.imdsEndpoint),
                http: harness.http)
            #expect(try await Self.probeIdentity(harness, user) == "uami")
            let unknown = ManagedIdentityCredential(
                identity: .clientId("5ec7e700-0000-4000-8000-00000000dead"),
                source: .imds(endpoint: harness.endpoints.imdsEndpoint), http: harness.http)
            await #expect {
                _ = try await unknown.getToken(TokenRequestContext(scope: "\(harness.endpoints.resource)/.default"))
            } throws: { error in
                (error as? CredentialError)?.kind == .unavailable
            }
            let nowhere = ManagedIdentityCredential(source: .imds(endpoint: "http://127.0.0.1:9"), http: harness.http)
            await #expect {
                _ = try await nowhere.getToken(TokenRequestContext(scope: "x/.default"))
            } throws: { error in
                (error as? CredentialError)?.kind == .unavailable
                    && "\(error)".contains("no managed identity endpoint answered")
            }
        }
    }

    @Test("Managed identity retries IMDS 429, 503 and 410 with backoff")
    func imdsRetries() async throws {
        try await withEmulator(seed: Self.seed()) { (harness) async throws in
            await harness.emulator.inject(
                FaultRule(pathPrefix: "/metadata/identity", count: 1, action: .status(429, retryAfter: 2)))
            await harness.emulator.inject(
                FaultRule(pathPrefix: "/metadata/identity", count: 1, action: .status(503, retryAfter: nil)))
            await harness.emulator.inject(
                FaultRule(pathPrefix: "/metadata/identity", count: 1, action: .status(410, retryAfter: nil)))
            let clock = RecordingClock()
            let credential = ManagedIdentityCredential(
                source: .imds(endpoint: harness.endpoints.imdsEndpoint), http: harness.http, clock: clock)
            _ = try await credential.getToken(TokenRequestContext(scope: "\(harness.endpoints.resource)/.default"))
            let imdsCalls = await harness.emulator.requests().filter { $0.endpoint == .imds }
            #expect(imdsCalls.map(\.status) == [429, 503, 410, 200])
            #expect(clock.sleeps.count == 3)
            #expect(clock.sleeps.first == .seconds(2), "Retry-After is honoured")
        }
    }

    @Test("App Service managed identity endpoint")
    func appService() async throws {
        try await withEmulator(seed: Self.seed()) { (harness) async throws in
            let source = ManagedIdentityCredential.Source.detect(environment: [
                "IDENTITY_ENDPOINT": harness.endpoints.appServiceEndpoint, "IDENTITY_HEADER": "header-value",
            ])
            #expect(source == .appService(endpoint: harness.endpoints.appServiceEndpoint, header: "header-value"))
            let credential = ManagedIdentityCredential(source: source, http: harness.http)
            #expect(try await Self.probeIdentity(harness, credential) == "node")
        }
    }

    @Test("Azure CLI: runs 'az account get-access-token' with the vault's resource and tenant")
    func azureCLI() async throws {
        try await withEmulator(seed: Self.seed()) { (harness) async throws in
            let token = try await ClientSecretCredential(
                authority: harness.authority, clientId: Self.secretApp, secret: "the-right-secret", http: harness.http
            )
            .getToken(TokenRequestContext(scope: "\(harness.endpoints.resource)/.default"))
            let bin = harness.directory.appendingPathComponent("bin")
            try FileManager.default.createDirectory(at: bin, withIntermediateDirectories: true)
            let argumentsFile = harness.directory.appendingPathComponent("az-arguments").path
            let expiry = Int(token.expiresOn.timeIntervalSince1970)
            let script = """
                #!/bin/sh
                echo "$@" > '\(argumentsFile)'
                printf '%s' '{"accessToken": "\(token.token)", "expires_on": \(expiry), "tenant": "\(harness.tenantId)", "tokenType": "Bearer"}'
                """
            let az = bin.appendingPathComponent("az").path
            try Self.writeExecutable(az, script)
            // A generous timeout: a loaded test machine can take seconds to spawn a shell script.
            let credential = AzureCLICredential(searchPath: bin.path, timeout: .seconds(60))
            #expect(
                try await Self.retryingTextFileBusy { try await Self.probeIdentity(harness, credential) }
                    == "secret-app")
            let arguments = try String(contentsOfFile: argumentsFile, encoding: .utf8)
            #expect(
                arguments.contains("account get-access-token --output json --resource \(harness.endpoints.resource)"))
            #expect(arguments.contains("--tenant \(harness.tenantId)"))

            try Self.writeExecutable(az, "#!/bin/sh\necho 'ERROR: Please run az login to setup account.' >&2\nexit 1\n")
            await #expect {
                _ = try await Self.retryingTextFileBusy {
                    try await AzureCLICredential(searchPath: bin.path, timeout: .seconds(60)).getToken(
                        TokenRequestContext(scope: "x/.default"))
                }
            } throws: { error in
                (error as? CredentialError)?.kind == .unavailable && "\(error)".contains("az login")
            }
            // az's crash report: the line that says what went wrong is the exception at the end.
            let traceback = """
                #!/bin/sh
                /bin/cat >&2 <<'ERR'
                The command failed with an unexpected error. Here is the traceback:
                Traceback (most recent call last):
                  File "/opt/az/lib/python3.11/site-packages/knack/cli.py", line 233, in invoke
                    cmd_result = self.invocation.execute(args)
                requests.exceptions.SSLError: HTTPSConnectionPool(host='login.example', port=443): certificate verify failed
                To check existing issues, please visit: https://github.com/Azure/azure-cli/issues
                ERR
                exit 1
                """
            try Self.writeExecutable(az, traceback)
            await #expect {
                _ = try await Self.retryingTextFileBusy {
                    try await AzureCLICredential(searchPath: bin.path, timeout: .seconds(60)).getToken(
                        TokenRequestContext(scope: "x/.default"))
                }
            } throws: { error in
                "\(error)".contains(
                    "requests.exceptions.SSLError: HTTPSConnectionPool(host='login.example', port=443): certificate verify failed"
                )
                    && !"\(error)".contains("Here is the traceback")
            }
            try Self.writeExecutable(
                az,
                "#!/bin/sh\necho 'WARNING: something minor' >&2\necho 'ERROR: (AADSTS700016) Application not found in the directory.' >&2\nexit 1\n"
            )
            await #expect {
                _ = try await Self.retryingTextFileBusy {
                    try await AzureCLICredential(searchPath: bin.path, timeout: .seconds(60)).getToken(
                        TokenRequestContext(scope: "x/.default"))
                }
            } throws: { error in
                "\(error)".contains("ERROR: (AADSTS700016) Application not found in the directory.")
            }
            await #expect {
                _ = try await AzureCLICredential(searchPath: "/nonexistent").getToken(
                    TokenRequestContext(scope: "x/.default"))
            } throws: { error in
                (error as? CredentialError)?.kind == .unavailable
            }
        }
    }

    @Test("The default chain uses the environment's client secret, and stops on a wrong one")
    func defaultChain() async throws {
        try await withEmulator(seed: Self.seed()) { (harness) async throws in
            var settings = CredentialSettings.fromEnvironment([
                "AZURE_TENANT_ID": harness.tenantId, "AZURE_CLIENT_ID": Self.secretApp,
                "AZURE_CLIENT_SECRET": "the-right-secret",
                "AZURE_AUTHORITY_HOST": harness.endpoints.authorityHost, "PATH": "/nonexistent",
            ])
            let credential = try settings.makeCredential(http: harness.http)
            #expect(try await Self.probeIdentity(harness, credential) == "secret-app")
            #expect((credential.base as? CredentialChain)?.selected?.name.hasPrefix("ClientSecretCredential") == true)

            settings.clientSecret = "wrong"
            let failing = try settings.makeCredential(http: harness.http)
            await #expect {
                _ = try await failing.getToken(TokenRequestContext(scope: "\(harness.endpoints.resource)/.default"))
            } throws: { error in
                let text = "\(error)"
                return (error as? CredentialError)?.kind == .authenticationFailed && text.contains("AADSTS7000215")
                    && !text.contains("ManagedIdentityCredential")
            }
        }
    }

    @Test("When no credential works, the error says why for each one")
    func chainExplains() async throws {
        try await withEmulator(seed: Self.seed()) { (harness) async throws in
            var settings = CredentialSettings.fromEnvironment(["PATH": "/nonexistent"])
            settings.imdsEndpoint = "http://127.0.0.1:9"
            let credential = try settings.makeCredential(http: harness.http)
            await #expect {
                _ = try await credential.getToken(TokenRequestContext(scope: "x/.default"))
            } throws: { error in
                let text = "\(error)"
                return [
                    "EnvironmentCredential", "WorkloadIdentityCredential", "ManagedIdentityCredential",
                    "AzureCLICredential",
                ].allSatisfy(text.contains)
            }
        }
    }

    @Test(
        "Explicit credential kinds report what is missing",
        arguments: CredentialSettings.Kind.allCases.filter { $0 != .auto && $0 != .azureCLI && $0 != .managedIdentity })
    func missingSettings(kind: CredentialSettings.Kind) async throws {
        var settings = CredentialSettings()
        settings.kind = kind
        #expect {
            _ = try settings.makeCredential(http: try CurlHTTPClient())
        } throws: { error in
            (error as? CredentialError)?.kind == .invalidConfiguration && "\(error)".contains("AZURE_")
        }
    }

    @Test("A challenge from another tenant is refused unless allowed")
    func tenantMismatch() async throws {
        try await withEmulator(seed: Self.seed()) { (harness) async throws in
            let other = EntraAuthority(
                host: harness.endpoints.authorityHost, tenantId: "11111111-1111-1111-1111-111111111111")
            let credential = ClientSecretCredential(
                authority: other, clientId: Self.secretApp, secret: "the-right-secret", http: harness.http)
            await #expect {
                _ = try await harness.client("identity-vault", credential: credential).getSecret("probe")
            } throws: { error in
                "\(error)".contains("--additionally-allowed-tenants")
            }
        }
    }
}
