import CSINode
import CSIProtocol
import Foundation
import GRPCCore
import HTTPTypes
import SwiftProtobuf
import TestSupport
import Testing

/// The emulator seed of the CSI tests: two workload identities (team A and team B, each federated
/// with one service account), a service principal with a secret, the node's managed identity, and
/// two vaults whose access rules keep the teams apart.
enum CSISeed {
    static let teamA = "aaaaaaaa-0000-4000-8000-00000000000a"
    static let teamB = "bbbbbbbb-0000-4000-8000-00000000000b"
    static let servicePrincipal = "cccccccc-0000-4000-8000-00000000000c"
    static let servicePrincipalSecret = "sp-secret-value-7f3a"
    static let teamASubject = "system:serviceaccount:team-a:reader"
    static let teamBSubject = "system:serviceaccount:team-b:reader"

    static let json = """
        {
          "allowUnknownIdentities": false,
          "identities": [
            {"name": "team-a", "type": "servicePrincipal", "clientId": "\(teamA)", "federatedSubjects": ["\(teamASubject)"]},
            {"name": "team-b", "type": "servicePrincipal", "clientId": "\(teamB)", "federatedSubjects": ["\(teamBSubject)"]},
            {"name": "ops", "type": "servicePrincipal", "clientId": "\(servicePrincipal)", "clientSecret": "\(servicePrincipalSecret)"},
            {"name": "node", "type": "managedIdentity", "systemAssigned": true},
            {"name": "setter", "type": "servicePrincipal", "clientId": "setter"}
          ],
          "vaults": [
            {
              "name": "team-a-kv",
              "access": [
                {"identity": "team-a", "secrets": ["get", "list"], "keys": ["get"], "certificates": ["get"]},
                {"identity": "ops", "secrets": ["get"]},
                {"identity": "node", "secrets": ["get"]},
                {"identity": "setter", "secrets": ["all"]}
              ],
              "secrets": [
                {"name": "db-password", "value": "team-a-password"},
                {"name": "api-key", "value": "team-a-api-key"},
                {"name": "encoded", "value": "aGVsbG8gd29ybGQ="},
                {"name": "rotating", "versions": [{"value": "one"}, {"value": "two"}, {"value": "three"}]}
              ],
              "keys": [{"name": "signing", "kty": "EC", "curve": "P-256"}],
              "certificates": [{"name": "web", "dnsNames": ["web.example"], "chain": 3}]
            },
            {
              "name": "team-b-kv",
              "access": [{"identity": "team-b", "secrets": ["get"]}],
              "secrets": [{"name": "db-password", "value": "team-b-password"}]
            }
          ]
        }
        """
}

/// `akvfs csi` against an emulator: its socket, state and log in the emulator's directory, the
/// emulator as its cloud (an Azure Stack environment file) and as its Kubernetes API.
final class CSIPluginProcess: Sendable {
    let emulator: EmulatorProcess
    let process: ChildProcess
    let socketPath: String
    let stateDirectory: String
    let logFile: URL
    /// Exists while this process serves CSI (during a handoff the socket answers for either).
    let readyFile: String

    var mountRoot: String { "\(stateDirectory)/mount" }

    /// `kubernetes` false starts the plugin without a Kubernetes API: volumes then carry their
    /// parameters as attributes, and only Entra ID can prove their service-account tokens.
    init(
        emulator: EmulatorProcess, arguments: [String] = ["--ttl", "2"], kubernetes: Bool = true,
        environment: [String: String] = [:],
        reuseStateOf previous: CSIPluginProcess? = nil
    ) async throws {
        self.emulator = emulator
        let id = UUID().uuidString.prefix(8)
        socketPath = previous?.socketPath ?? emulator.directory.appendingPathComponent("csi-\(id).sock").path
        stateDirectory = previous?.stateDirectory ?? emulator.directory.appendingPathComponent("csi-state-\(id)").path
        logFile = emulator.directory.appendingPathComponent("csi-\(UUID().uuidString.prefix(8)).log")
        readyFile = emulator.directory.appendingPathComponent("csi-ready-\(UUID().uuidString.prefix(8))").path

        let cloudFile = emulator.directory.appendingPathComponent("cloud.json")
        let cloud = """
            {"name": "AzureStackCloud", "activeDirectoryEndpoint": "https://localhost:\(emulator.port)",
             "keyVaultEndpoint": "https://vault.localhost:\(emulator.port)", "keyVaultDNSSuffix": "vault.localhost:\(emulator.port)"}
            """
        try Data(cloud.utf8).write(to: cloudFile)
        let tokenFile = emulator.directory.appendingPathComponent("plugin-token")
        let (_, tokenBody) = try await emulator.send(
            .post, "\(emulator.adminURL)/service-account-tokens",
            json: [
                "subject": "system:serviceaccount:kube-system:akvfs-csi", "audience": "https://kubernetes.default.svc",
            ])
        let token = try #require(
            (try JSONSerialization.jsonObject(with: Data(tokenBody)) as? [String: Any])?["token"] as? String)
        try Data(token.utf8).write(to: tokenFile)

        let variables = [
            "PATH": "/usr/bin:/bin:/usr/sbin:/sbin",
            "AKVFS_CA_FILE": emulator.caFile,
            "AKVFS_IMDS_ENDPOINT": emulator.imdsEndpoint,
            "AKVFS_LOG_LEVEL": "debug",
        ].merging(environment) { $1 }
        let kubernetesArguments = [
            "--kubernetes-api", "https://localhost:\(emulator.port)", "--kubernetes-token-file", tokenFile.path,
            "--kubernetes-ca-file", emulator.caFile,
        ]
        process = try ChildProcess.spawn(
            buildDirectory.appendingPathComponent("akvfs").path,
            [
                "csi", "--endpoint", "unix://\(socketPath)", "--node-id", "test-node", "--state-dir", stateDirectory,
                "--kubelet-dir", emulator.directory.path, "--ready-file", readyFile,
                "--cloud", "AzureStackCloud", "--cloud-env-file", cloudFile.path,
            ] + (kubernetes ? kubernetesArguments : []) + arguments,
            environment: variables, stderr: .file(logFile.path))
        try await waitUntilReady()
    }

    var log: String { (try? String(contentsOf: logFile, encoding: .utf8)) ?? "" }

    private func waitUntilReady() async throws {
        for _ in 0..<300 {
            guard process.isRunning else {
                throw TestFailure("akvfs csi exited (\(process.wait())) before serving:\n\(log)")
            }
            if FileManager.default.fileExists(atPath: readyFile), FileManager.default.fileExists(atPath: socketPath),
                let ready = try? await client({ try await $0.identity.probe(.init()).ready.value }), ready
            {
                return
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw TestFailure("akvfs csi did not serve within 30 s:\n\(log)")
    }

    func client<Result: Sendable>(_ body: (CSIClient) async throws -> Result) async throws -> Result {
        try await CSIClient.with(socketPath: socketPath, body)
    }

    /// SIGTERM, and the exit status.
    func stop() async -> Int32 {
        process.signal(SIGTERM)
        return await process.exit()
    }
}

/// A pod's volume in the CSI tests: its target path under the emulator's directory (kubelet
/// creates the parent; the plugin creates the target) and kubelet's volume context.
struct TestVolume: Sendable {
    var id: String
    var targetPath: String
    var attributes: [String: String]
    var secrets: [String: String] = [:]

    init(
        _ emulator: EmulatorProcess, pod: String, namespace: String = "team-a", attributes: [String: String],
        secrets: [String: String] = [:]
    ) throws {
        id = "csi-\(pod)-\(UUID().uuidString.prefix(8))"
        let podDirectory = emulator.directory.appendingPathComponent("pods/\(id)")
        try FileManager.default.createDirectory(at: podDirectory, withIntermediateDirectories: true)
        targetPath = podDirectory.appendingPathComponent("mount").path
        self.attributes = attributes.merging([
            "csi.storage.k8s.io/pod.name": pod, "csi.storage.k8s.io/pod.namespace": namespace,
            "csi.storage.k8s.io/pod.uid": UUID().uuidString.lowercased(),
            "csi.storage.k8s.io/serviceAccount.name": "reader",
            "csi.storage.k8s.io/ephemeral": "true",
        ]) { mine, _ in mine }
        self.secrets = secrets
    }

    /// A volume that names the vault in its attributes and signs in as the service principal
    /// given in the node-publish secrets: team-a-kv's db-password as `password.txt`.
    static func servicePrincipal(_ emulator: EmulatorProcess, pod: String) throws -> TestVolume {
        try TestVolume(
            emulator, pod: pod,
            attributes: [
                "keyvaultName": "team-a-kv", "tenantId": CSIPluginTests.tenant,
                "objects": objectsParameter([
                    ["objectName": "db-password", "objectType": "secret", "objectAlias": "password.txt"]
                ]),
            ],
            secrets: ["clientid": CSISeed.servicePrincipal, "clientsecret": CSISeed.servicePrincipalSecret])
    }

    func path(_ relative: String) -> String { "\(targetPath)/\(relative)" }

    func read(_ relative: String) async throws -> String {
        let path = self.path(relative)
        return try await blocking { try String(contentsOfFile: path, encoding: .utf8) }
    }

    var isMounted: Bool { TestMounts.isMountPoint(targetPath) }
}

enum TestMounts {
    static func isMountPoint(_ path: String) -> Bool {
        let table = mountInfo()
        return table.split(separator: "\n").contains { line in
            let fields = line.split(separator: " ")
            return fields.count > 4 && fields[4] == path
        }
    }

    /// The per-mount options (mountinfo's sixth field) of the mount at `path`.
    static func options(of path: String) -> [String] {
        let table = mountInfo()
        let line = table.split(separator: "\n").last {
            $0.split(separator: " ").count > 5 && $0.split(separator: " ")[4] == path
        }
        return line.map { $0.split(separator: " ")[5].split(separator: ",").map(String.init) } ?? []
    }

    /// Unmounts everything under `directory` (deepest first), whatever a failed test left.
    static func unmountAll(under directory: String) {
        let table = mountInfo()
        let mounts = table.split(separator: "\n").compactMap { line -> String? in
            let fields = line.split(separator: " ")
            return fields.count > 4 && fields[4].hasPrefix(directory) ? String(fields[4]) : nil
        }
        for mount in mounts.sorted(by: { $0.count > $1.count }) { umount2(mount, Int32(MNT_DETACH)) }
    }
}

extension EmulatorProcess {
    /// A service-account token as kubelet's tokenRequests hands it over, for `subject`.
    func serviceAccountTokens(subject: String, lifetimeSeconds: Int = 3600) async throws -> String {
        kubeletTokens(try await serviceAccountToken(["subject": subject, "lifetimeSeconds": lifetimeSeconds]))
    }

    /// A bare token from the emulator's service-account issuer; `request` is the admin API's body
    /// (`subject`, `audience`, `lifetimeSeconds`, `issuedAt`, `issuer`, `pod`).
    func serviceAccountToken(_ request: [String: Any]) async throws -> String {
        let (status, body) = try await send(.post, "\(adminURL)/service-account-tokens", json: request)
        guard status == 201 else {
            throw TestFailure(
                "minting a service-account token answered \(status): \(String(decoding: body, as: UTF8.self))")
        }
        return try #require((try JSONSerialization.jsonObject(with: Data(body)) as? [String: Any])?["token"] as? String)
    }

    /// Every request the emulator answered, oldest first.
    func requestLog() async throws -> [[String: Any]] {
        let (_, body) = try await send(.get, "\(adminURL)/requests")
        return (try JSONSerialization.jsonObject(with: Data(body)) as? [String: Any])?["requests"] as? [[String: Any]]
            ?? []
    }

    /// Requests to `endpoint` (`keyvault`, `token`, `kubernetes`, …) so far.
    func requests(endpoint: String) async throws -> [[String: Any]] {
        try await requestLog().filter { $0["endpoint"] as? String == endpoint }
    }

    /// Stores a SecretProviderClass in the emulated Kubernetes API.
    func putSecretProviderClass(
        namespace: String, name: String, provider: String = "azure", parameters: [String: String]
    ) async throws {
        let object: [String: Any] = [
            "apiVersion": "secrets-store.csi.x-k8s.io/v1", "kind": "SecretProviderClass",
            "metadata": ["name": name, "namespace": namespace],
            "spec": ["provider": provider, "parameters": parameters],
        ]
        let (status, _) = try await send(.put, "\(adminURL)/secretproviderclasses/\(namespace)/\(name)", json: object)
        guard status == 201 else { throw TestFailure("storing the SecretProviderClass answered \(status)") }
    }

    /// The client IDs that fetched `path` in `vault` (a GET answered 200) after the request
    /// numbered `sequence`.
    func fetchers(of path: String, in vault: String, after sequence: Int) async throws -> Set<String> {
        let fetches = try await requests(vault: vault, path: path).filter {
            $0["status"] as? Int == 200 && ($0["sequence"] as? Int ?? 0) > sequence
        }
        return Set(fetches.compactMap { ($0["identity"] as? [String: Any])?["clientId"] as? String })
    }

    /// Key Vault GETs of one object path answered so far (the emulator's request log; a client's
    /// first, unauthenticated request is the challenge and does not count).
    func gets(vault: String, path: String) async throws -> Int {
        try await requests(vault: vault, path: path).filter { $0["status"] as? Int != 401 }.count
    }
}

/// The SecretProviderClass `objects` parameter for these objects (each a YAML block of fields).
func objectsParameter(_ objects: [[String: String]]) -> String {
    "array:\n"
        + objects.map { fields in
            "  - |\n" + fields.sorted { $0.key < $1.key }.map { "    \($0.key): \($0.value)\n" }.joined()
        }.joined()
}

/// kubelet's `csi.storage.k8s.io/serviceAccount.tokens` holding `token` for workload identity.
func kubeletTokens(_ token: String, lifetimeSeconds: Int = 3600) -> String {
    let expiry = ISO8601DateFormatter().string(from: Date().addingTimeInterval(Double(lifetimeSeconds)))
    let tokens = ["api://AzureADTokenExchange": ["token": token, "expirationTimestamp": expiry]]
    return String(decoding: (try? JSONSerialization.data(withJSONObject: tokens)) ?? Data(), as: UTF8.self)
}

/// Runs `body` with an emulator of the CSI seed and a plugin, and always cleans up.
func withCSIPlugin(
    arguments: [String] = ["--ttl", "2"], kubernetes: Bool = true, environment: [String: String] = [:],
    _ body: (EmulatorProcess, CSIPluginProcess) async throws -> Void
) async throws {
    let emulator = try await EmulatorProcess(seedJSON: CSISeed.json)
    var plugin: CSIPluginProcess?
    do {
        plugin = try await CSIPluginProcess(
            emulator: emulator, arguments: arguments, kubernetes: kubernetes, environment: environment)
        try await body(emulator, plugin!)
    } catch {
        if let plugin { Issue.record("plugin log:\n\(plugin.log)") }
        await cleanUp(emulator, plugin)
        throw error
    }
    await cleanUp(emulator, plugin)
}

private func cleanUp(_ emulator: EmulatorProcess, _ plugin: CSIPluginProcess?) async {
    TestMounts.unmountAll(under: emulator.directory.path)
    if let plugin { _ = await plugin.stop() }
    TestMounts.unmountAll(under: emulator.directory.path)
    await emulator.stop()
}
