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

/// `akvfs get` and `akvfs check` as users run them, against the emulator.
@Suite("akvfs get and check")
struct CommandLineTests {
    static let binary = builtExecutable("akvfs")

    /// Runs akvfs with a clean environment plus `environment`.
    static func akvfs(_ arguments: [String], environment: [String: String]) async throws -> CommandOutcome {
        let variables = ["PATH": "/nonexistent", "HOME": NSTemporaryDirectory()].merging(environment) { $1 }
        return try await ChildProcess.run(binary, arguments, environment: variables)
    }

    static func environment(_ harness: EmulatorHarness, secret: String = "cli-secret") -> [String: String] {
        [
            "AKVFS_CA_FILE": harness.caFile,
            "AZURE_TENANT_ID": harness.tenantId,
            "AZURE_CLIENT_ID": "c11c11c1-0000-4000-8000-000000000001",
            "AZURE_CLIENT_SECRET": secret,
            "AZURE_AUTHORITY_HOST": harness.endpoints.authorityHost,
            "AKVFS_IMDS_ENDPOINT": "http://127.0.0.1:9",
        ]
    }

    static let seed = Seed(
        identities: [
            SeedIdentity(
                name: "cli", type: .servicePrincipal, clientId: "c11c11c1-0000-4000-8000-000000000001",
                clientSecret: "cli-secret")
        ],
        vaults: [
            SeedVault(
                name: "cli-vault",
                secrets: [
                    SeedSecret(name: "plain", value: "secret1value"),
                    SeedSecret(name: "as-base64", value: "QmFzZTY0RW5jb2RlZFN0cmluZw=="),
                    SeedSecret(name: "as-hex", value: "486578456E636F646564537472696E67"),
                ],
                keys: [SeedKey(name: "ec-key", keyType: "EC", curve: "P-384")],
                certificates: [SeedCertificate(name: "tls", subject: "CN=tls.example", dnsNames: ["tls.example"])]
            )
        ]
    )

    @Test("get writes exactly the bytes the filesystem serves")
    func getBytes() async throws {
        try await withEmulator(seed: Self.seed) { (harness) async throws in
            let vault = harness.endpoints.vaultURL("cli-vault")
            let env = Self.environment(harness)
            #expect(try await Self.akvfs(["get", vault, "secrets/plain"], environment: env).text == "secret1value")
            #expect(
                try await Self.akvfs(["get", vault, "secrets/as-base64", "--encoding", "base64"], environment: env).text
                    == "Base64EncodedString")
            #expect(
                try await Self.akvfs(["get", vault, "secrets/as-hex", "--encoding", "HEX"], environment: env).text
                    == "HexEncodedString")

            let key = try await Self.akvfs(["get", vault, "keys/ec-key"], environment: env)
            #expect(key.status == 0)
            #expect(try PublicKey(pem: key.text).algorithm == .ec(.p384))

            let pem = try await Self.akvfs(["get", vault, "secrets/tls"], environment: env).text
            let blocks = try PEM.decode(pem)
            #expect(blocks.map(\.label) == ["PRIVATE KEY", "CERTIFICATE"])
            let certificate = try await Self.akvfs(["get", vault, "certs/tls"], environment: env).text
            #expect(try Certificate(pem: certificate) == Certificate(der: blocks[1].der))
            #expect(try PrivateKey(der: blocks[0].der).publicKey == Certificate(pem: certificate).publicKey)

            let pfxText = try await Self.akvfs(["get", vault, "secrets/tls", "--format", "pfx"], environment: env).text
            let pfxBinary = try await Self.akvfs(
                ["get", vault, "secrets/tls", "--format", "pfx", "--encoding", "base64"], environment: env
            ).stdout
            #expect(Data(base64Encoded: pfxText).map(Array.init) == pfxBinary)
            #expect(try PKCS12.parse(pfxBinary).certificates.count == 1)
        }
    }

    @Test("A certificate imported with a scrambled chain comes out key first, then leaf to root")
    func chainOrder() async throws {
        try await withEmulator(seed: Self.seed) { (harness) async throws in
            let now = Date()
            let rootKey = try PrivateKey.generate(.ec(.p256))
            var rootTemplate = CertificateTemplate(
                subject: "CN=Root", notBefore: now, notAfter: now.addingTimeInterval(86_400))
            rootTemplate.isCertificateAuthority = true
            let root = try rootTemplate.selfSigned(with: rootKey)
            let intermediateKey = try PrivateKey.generate(.ec(.p256))
            var intermediateTemplate = CertificateTemplate(
                subject: "CN=Intermediate", notBefore: now, notAfter: now.addingTimeInterval(86_400))
            intermediateTemplate.isCertificateAuthority = true
            let intermediate = try intermediateTemplate.issue(
                for: intermediateKey.publicKey, issuer: root, issuerKey: rootKey)
            let leafKey = try PrivateKey.generate(.rsa(bits: 2048))
            let leaf = try CertificateTemplate(
                subject: "CN=leaf.example", notBefore: now, notAfter: now.addingTimeInterval(86_400)
            )
            .issue(for: leafKey.publicKey, issuer: intermediate, issuerKey: intermediateKey)
            let pfx = try PKCS12.create(privateKey: leafKey, certificates: [root, leaf, intermediate])
            let credential = harness.secretCredential(
                clientId: "c11c11c1-0000-4000-8000-000000000001", secret: "cli-secret")
            let token = try await credential.getToken(.init(scope: "\(harness.endpoints.resource)/.default"))
            // Import as Microsoft's SDKs do: POST /certificates/{name}/import.
            let imported = try await harness.http.execute(
                .init(
                    method: .post, scheme: "https", authority: "cli-vault.vault.localhost:\(harness.endpoints.port)",
                    path: "/certificates/chained/import?api-version=7.6",
                    headerFields: [.authorization: "Bearer \(token.token)", .contentType: "application/json"]),
                body: Array(try JSONSerialization.data(withJSONObject: ["value": Data(pfx).base64EncodedString()])))
            #expect(imported.head.status.code == 200)

            let output = try await Self.akvfs(
                ["get", harness.endpoints.vaultURL("cli-vault"), "secrets/chained"],
                environment: Self.environment(harness))
            #expect(output.status == 0, "\(output.stderr)")
            let blocks = try PEM.decode(output.text)
            #expect(blocks.first?.label == "PRIVATE KEY")
            #expect(try blocks.dropFirst().map { try Certificate(der: $0.der) } == [leaf, intermediate, root])
        }
    }

    @Test("Errors exit non-zero with a reason, and never show the secret")
    func errors() async throws {
        try await withEmulator(seed: Self.seed) { (harness) async throws in
            let vault = harness.endpoints.vaultURL("cli-vault")
            let missing = try await Self.akvfs(
                ["get", vault, "secrets/absent"], environment: Self.environment(harness))
            #expect(missing.status != 0 && missing.stdout.isEmpty)
            #expect(missing.stderr.contains("not found") && missing.stderr.contains("SecretNotFound"))

            let wrong = try await Self.akvfs(
                ["get", vault, "secrets/plain"], environment: Self.environment(harness, secret: "WrongSecretValue123"))
            #expect(wrong.status != 0)
            #expect(wrong.stderr.contains("AADSTS7000215"))
            #expect(!wrong.stderr.contains("WrongSecretValue123"))

            for (arguments, expected) in [
                (["get", vault, "secret/plain"], "is not an object path"),
                (["get", vault, "keys/ec-key", "--format", "pfx"], "--format only applies to secrets"),
                (
                    ["get", vault, "secrets/plain", "--encoding", "utf-16"],
                    "--encoding 'utf-16' is not utf-8, base64 or hex"
                ),
                (["get", "kv", "secrets/plain"], "'kv' is not a valid vault name"),
                (["get", vault, "secrets/plain", "--credential", "magic"], "--credential 'magic' is not one of"),
                (["get", "myvault", "secrets/plain", "--cloud", "AzureCloud1"], "cloudName AzureCloud1 is not valid"),
            ] {
                let run = try await Self.akvfs(arguments, environment: Self.environment(harness))
                #expect(run.status != 0)
                #expect(run.stderr.contains(expected), "\(arguments): \(run.stderr)")
            }
        }
    }

    @Test("A number outside its range is refused before anything starts, naming the range and the value")
    func optionRanges() async throws {
        for (arguments, expected) in [
            (
                ["mount", "myvault", "/nonexistent", "--negative-ttl", "5000"],
                "--negative-ttl must be between 0 and 3600 seconds; got 5000."
            ),
            (
                ["mount", "myvault", "/nonexistent", "--max-concurrency", "0"],
                "--max-concurrency must be between 1 and 256; got 0."
            ),
            (
                ["get", "myvault", "secrets/plain", "--timeout", "0"],
                "--timeout must be between 1 and 3600 seconds; got 0."
            ),
            (
                ["csi", "--node-id", "n", "--max-request-bytes", "5"],
                "--max-request-bytes must be between 4096 and 67108864; got 5."
            ),
            // A negative number is the option's value, not another option ("Missing value for '--ttl'" before).
            (
                ["mount", "myvault", "/nonexistent", "--ttl", "-5"],
                "--ttl must be between 1 and 86400 seconds; got -5."
            ),
        ] {
            let run = try await Self.akvfs(arguments, environment: [:])
            #expect(run.status != 0)
            #expect(run.stderr.contains(expected), "\(arguments): \(run.stderr)")
        }
    }

    @Test("check reports the credential, identity, tenant and what works")
    func check() async throws {
        try await withEmulator(seed: Self.seed) { (harness) async throws in
            let vault = harness.endpoints.vaultURL("cli-vault")
            let good = try await Self.akvfs(["check", vault], environment: Self.environment(harness))
            #expect(good.status == 0, "\(good.stderr)")
            for expected in [
                "list secrets  ok (4)", "list keys     ok", "list certs    ok (1)", "get  secrets/",
                "ClientSecretCredential", "c11c11c1-0000-4000-8000-000000000001", harness.tenantId,
            ] {
                #expect(good.text.contains(expected), "missing '\(expected)' in:\n\(good.text)")
            }
            #expect(!good.text.contains("secret1value"))

            let bad = try await Self.akvfs(["check", vault, "secrets/absent"], environment: Self.environment(harness))
            #expect(bad.status != 0)
            #expect(bad.text.contains("get  secrets/absent FAILED"))

            let noIdentity = try await Self.akvfs(
                ["check", vault],
                environment: ["AKVFS_CA_FILE": harness.caFile, "AKVFS_IMDS_ENDPOINT": "http://127.0.0.1:9"])
            #expect(noIdentity.status != 0)
            #expect(noIdentity.text.contains("EnvironmentCredential") && noIdentity.text.contains("AzureCLICredential"))
        }
    }
}

@Suite("akvfs binary")
struct BinaryTests {
    /// The node mount carries neither the emulator's server stack nor the CSI plugin's gRPC,
    /// protobuf and YAML stacks (those live in akvfs-csi, which `akvfs csi` runs).
    @Test("akvfs links neither the emulator's server stack nor the CSI plugin's")
    func noServerStack() throws {
        let bytes = try Data(contentsOf: URL(fileURLWithPath: CommandLineTests.binary))
        for module in ["Hummingbird", "KeyVaultEmulator", "GRPCCore", "SwiftProtobuf", "Yams", "NIOPosix"] {
            #expect(bytes.range(of: Data(module.utf8)) == nil, "akvfs contains \(module)")
        }
    }

    /// objects is read by akvfs's own YAML reader: a YAML library would bring full Foundation and
    /// ICU into the plugin (docs/mounting.md, Containers).
    @Test("akvfs-csi links no YAML library")
    func noYAMLLibraryInThePlugin() throws {
        let bytes = try Data(contentsOf: URL(fileURLWithPath: builtExecutable("akvfs-csi")))
        #expect(bytes.range(of: Data("SecretProviderClass".utf8)) != nil, "akvfs-csi is not the plugin")
        #expect(bytes.range(of: Data("Yams".utf8)) == nil, "akvfs-csi contains Yams")
    }

    @Test("akvfs csi runs akvfs-csi from akvfs's directory, and says so when it is missing")
    func csiForwarding() async throws {
        let forwarded = try await CommandLineTests.akvfs(["csi", "publish", "--help"], environment: [:])
        #expect(forwarded.status == 0)
        #expect(forwarded.text.contains("USAGE: akvfs csi publish"))

        // A hard link, not a copy: a freshly written copy can be "Text file busy" for as long as a
        // process another test spawns meanwhile holds the inherited write descriptor. The link
        // lives in the build directory so that it is on the binary's filesystem.
        let directory = buildDirectory.appendingPathComponent("akvfs-alone-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let alone = directory.appendingPathComponent("akvfs").path
        try FileManager.default.linkItem(atPath: CommandLineTests.binary, toPath: alone)
        let run = try await ChildProcess.run(alone, ["csi", "--help"], environment: ["PATH": "/nonexistent"])
        #expect(run.status == 127)
        #expect(
            run.stderr.contains("\(directory.path)/akvfs-csi")
                && run.stderr.contains("installed in the same directory as akvfs"))
    }
}
