import CSINode
import CSIProtocol
import CXattr
import Foundation
import GRPCCore
import HTTPTypes
import PKI
import SwiftProtobuf
import TestSupport
import Testing

/// `akvfs csi` for real: the plugin in its own process, kubelet's calls over its unix socket,
/// volumes bind-mounted onto target paths, the emulator as Key Vault, Entra ID and the
/// Kubernetes API.
@Suite("CSI node plugin", .serialized, .timeLimit(.minutes(5)))
struct CSIPluginTests {
    static let tenant = "72f988bf-86f1-41af-91ab-2d7cd011db47"

    /// Team A's SecretProviderClass, as the Azure provider's workload-identity example writes it.
    static func teamAParameters(
        objects: [[String: String]]? = nil, vault: String = "team-a-kv", clientID: String = CSISeed.teamA
    ) -> [String: String] {
        [
            "keyvaultName": vault, "tenantId": tenant, "clientID": clientID,
            "objects": objectsParameter(
                objects ?? [
                    ["objectName": "db-password", "objectType": "secret"],
                    [
                        "objectName": "api-key", "objectType": "secret", "objectAlias": "config/api.key",
                        "filePermission": "0600",
                    ],
                    ["objectName": "encoded", "objectType": "secret", "objectEncoding": "base64"],
                    ["objectName": "signing", "objectType": "key"],
                    ["objectName": "web", "objectType": "cert"],
                    ["objectName": "rotating", "objectType": "secret", "objectVersionHistory": "2"],
                ]),
        ]
    }

    @Test("Identity and node info: driver name, readiness, node id, VOLUME_MOUNT_GROUP")
    func identity() async throws {
        try await withCSIPlugin { _, plugin in
            try await plugin.client { client in
                let info = try await client.identity.getPluginInfo(.init())
                #expect(info.name == "csi.akvfs.io")
                #expect(!info.vendorVersion.isEmpty)
                #expect(try await client.identity.probe(.init()).ready.value)
                #expect(try await client.identity.getPluginCapabilities(.init()).capabilities.isEmpty)
                #expect(try await client.node.nodeGetInfo(.init()).nodeID == "test-node")
                #expect(
                    try await client.node.nodeGetCapabilities(.init()).capabilities.map(\.rpc.type) == [
                        .volumeMountGroup
                    ])
                let stage = await #expect(throws: RPCError.self) { try await client.node.nodeStageVolume(.init()) }
                #expect(stage?.code == .unimplemented)
            }
        }
    }

    @Test(
        "A workload-identity volume from a SecretProviderClass: every object, alias, mode, encoding and version history"
    )
    func publishFromSecretProviderClass() async throws {
        try await withCSIPlugin { emulator, plugin in
            try await emulator.putSecretProviderClass(
                namespace: "team-a", name: "app", parameters: Self.teamAParameters())
            let tokens = try await emulator.serviceAccountTokens(subject: CSISeed.teamASubject)
            let volume = try TestVolume(
                emulator, pod: "web-0",
                attributes: [
                    "secretProviderClass": "app", "csi.storage.k8s.io/serviceAccount.tokens": tokens, "uid": "1000",
                ])
            try await plugin.client {
                try await $0.publish(
                    volumeID: volume.id, targetPath: volume.targetPath, attributes: volume.attributes,
                    mountGroup: "2000")
            }

            #expect(volume.isMounted)
            #expect(try await volume.read("db-password") == "team-a-password")
            #expect(try await volume.read("config/api.key") == "team-a-api-key")
            #expect(try await volume.read("encoded") == "hello world")
            #expect(try await volume.read("signing").hasPrefix("-----BEGIN PUBLIC KEY-----"))
            #expect(try await volume.read("web").hasPrefix("-----BEGIN CERTIFICATE-----"))
            #expect(try await volume.read("rotating/0") == "three")
            #expect(try await volume.read("rotating/1") == "two")
            #expect(!FileManager.default.fileExists(atPath: volume.path("rotating/2")))
            let names = try FileManager.default.contentsOfDirectory(atPath: volume.targetPath).sorted()
            #expect(names == ["..data", "config", "db-password", "encoded", "rotating", "signing", "web"])
            // As in the driver's volumes, where the files are written through the symlink ..data.
            #expect(try await volume.read("..data/db-password") == "team-a-password")
            #expect(try await volume.read("..data/rotating/1") == "two")
            #expect(try await status(volume.path("..data/config/api.key")).permissions == 0o600)

            let password = try await status(volume.path("db-password"))
            #expect(password.permissions == 0o644)
            let apiKey = try await status(volume.path("config/api.key"))
            #expect(apiKey.permissions == 0o600)
            #expect(
                apiKey.uid == 1000 && apiKey.gid == 2000, "uid from the volume attributes, gid from the pod's fsGroup")

            // Read-only, and not a way to run or escalate anything.
            #expect(open(volume.path("db-password"), O_WRONLY) == -1 && errno == EROFS)
            let options = TestMounts.options(of: volume.targetPath)
            #expect(["ro", "nosuid", "nodev", "noexec"].allSatisfy(options.contains), "\(options)")

            // The plugin's own mount holds every pod's volume: only root gets through its root, whatever
            // mode the state directory was created with. A pod has its bind mount.
            #expect(try await status(plugin.mountRoot).permissions == 0o700)
            // As kubelet makes the DaemonSet's hostPath (DirectoryOrCreate): open to all.
            #expect(chmod(emulator.directory.path, 0o711) == 0 && chmod(plugin.stateDirectory, 0o755) == 0)
            let view = try #require(try FileManager.default.contentsOfDirectory(atPath: plugin.mountRoot).first)
            let outsider = try await ChildProcess.run(
                "/usr/bin/setpriv",
                ["--reuid=65534", "--regid=65534", "--clear-groups", "cat", "\(plugin.mountRoot)/\(view)/db-password"])
            #expect(outsider.status != 0 && outsider.stdout.isEmpty, "another user on the node read a pod's secret")

            try await plugin.client { try await $0.unpublish(volumeID: volume.id, targetPath: volume.targetPath) }
        }
    }

    @Test("Parameters given as volumeAttributes, with a service principal from the node-publish secrets")
    func publishFromAttributes() async throws {
        try await withCSIPlugin { emulator, plugin in
            let volume = try TestVolume.servicePrincipal(emulator, pod: "ops-0")
            try await plugin.client {
                try await $0.publish(
                    volumeID: volume.id, targetPath: volume.targetPath, attributes: volume.attributes,
                    secrets: volume.secrets)
            }
            #expect(try await volume.read("password.txt") == "team-a-password")

            // The same client ID with a wrong secret shares nothing with the right one.
            let impostor = try TestVolume(
                emulator, pod: "ops-1", attributes: volume.attributes.filter { !$0.key.hasPrefix("csi.storage") },
                secrets: ["clientid": CSISeed.servicePrincipal, "clientsecret": "wrong"])
            let refused = await #expect(throws: RPCError.self) {
                try await plugin.client {
                    try await $0.publish(
                        volumeID: impostor.id, targetPath: impostor.targetPath, attributes: impostor.attributes,
                        secrets: impostor.secrets)
                }
            }
            #expect(refused?.code == .permissionDenied)
            #expect(refused?.message.contains("objectName:db-password") == true, "\(refused?.message ?? "")")
            #expect(refused?.message.contains("wrong") == false, "the secret never appears in messages")
            #expect(!impostor.isMounted && !FileManager.default.fileExists(atPath: impostor.targetPath))
            #expect(!plugin.log.contains(CSISeed.servicePrincipalSecret), "secrets never appear in the log")
        }
    }

    @Test("Volumes of different identities stay apart; volumes of one identity share one GET per object")
    func isolationAndSharing() async throws {
        // A long TTL, so that the only GETs are the ones publishing needs.
        try await withCSIPlugin(arguments: ["--ttl", "60"]) { emulator, plugin in
            let parameters = Self.teamAParameters(objects: [
                ["objectName": "db-password", "objectType": "secret"],
                ["objectName": "api-key", "objectType": "secret"],
            ])
            try await emulator.putSecretProviderClass(namespace: "team-a", name: "app", parameters: parameters)
            let teamATokens = try await emulator.serviceAccountTokens(subject: CSISeed.teamASubject)
            var teamA: [TestVolume] = []
            for pod in 0..<5 {
                let volume = try TestVolume(
                    emulator, pod: "a-\(pod)",
                    attributes: ["secretProviderClass": "app", "csi.storage.k8s.io/serviceAccount.tokens": teamATokens])
                try await plugin.client {
                    try await $0.publish(
                        volumeID: volume.id, targetPath: volume.targetPath, attributes: volume.attributes)
                }
                teamA.append(volume)
            }
            for volume in teamA {
                #expect(try await volume.read("db-password") == "team-a-password")
                #expect(try await volume.read("api-key") == "team-a-api-key")
            }
            #expect(
                try await emulator.gets(vault: "team-a-kv", path: "/secrets/db-password") == 1,
                "5 pods of one identity cost one GET")
            #expect(try await emulator.gets(vault: "team-a-kv", path: "/secrets/api-key") == 1)

            // Team B asks for team A's vault with its own identity: the cached content is not theirs.
            // Its client knows the vault's challenge from team A's, so it sends no unauthenticated
            // request first.
            let challengesAsked = try await emulator.requests(vault: "team-a-kv").filter {
                $0["status"] as? Int == 401
            }.count
            try await emulator.putSecretProviderClass(
                namespace: "team-b", name: "app",
                parameters: Self.teamAParameters(
                    objects: [["objectName": "db-password", "objectType": "secret"]], clientID: CSISeed.teamB))
            let teamBTokens = try await emulator.serviceAccountTokens(subject: CSISeed.teamBSubject)
            let intruder = try TestVolume(
                emulator, pod: "b-0", namespace: "team-b",
                attributes: ["secretProviderClass": "app", "csi.storage.k8s.io/serviceAccount.tokens": teamBTokens])
            let refused = await #expect(throws: RPCError.self) {
                try await plugin.client {
                    try await $0.publish(
                        volumeID: intruder.id, targetPath: intruder.targetPath, attributes: intruder.attributes)
                }
            }
            #expect(refused?.code == .permissionDenied, "\(refused?.message ?? "")")
            #expect(!intruder.isMounted)
            #expect(
                try await emulator.requests(vault: "team-a-kv").filter { $0["status"] as? Int == 401 }.count
                    == challengesAsked, "team B's client reused team-a-kv's challenge")

            // In its own vault, team B reads its own value of the same name.
            try await emulator.putSecretProviderClass(
                namespace: "team-b", name: "own",
                parameters: Self.teamAParameters(
                    objects: [["objectName": "db-password", "objectType": "secret"]], vault: "team-b-kv",
                    clientID: CSISeed.teamB))
            let teamB = try TestVolume(
                emulator, pod: "b-1", namespace: "team-b",
                attributes: ["secretProviderClass": "own", "csi.storage.k8s.io/serviceAccount.tokens": teamBTokens])
            try await plugin.client {
                try await $0.publish(volumeID: teamB.id, targetPath: teamB.targetPath, attributes: teamB.attributes)
            }
            #expect(try await teamB.read("db-password") == "team-b-password")
            #expect(try await teamA[0].read("db-password") == "team-a-password")

            // Team A's token presented with team B's service account is refused by Entra ID: sharing is keyed by service account.
            let borrowed = try TestVolume(
                emulator, pod: "b-2", namespace: "team-b",
                attributes: ["secretProviderClass": "app", "csi.storage.k8s.io/serviceAccount.tokens": teamBTokens])
            await #expect(throws: RPCError.self) {
                try await plugin.client {
                    try await $0.publish(
                        volumeID: borrowed.id, targetPath: borrowed.targetPath, attributes: borrowed.attributes)
                }
            }
        }
    }

    @Test("Republish refreshes the token, picks up changes, and never fails a working volume")
    func republish() async throws {
        try await withCSIPlugin { emulator, plugin in
            let objects = [["objectName": "db-password", "objectType": "secret"]]
            try await emulator.putSecretProviderClass(
                namespace: "team-a", name: "app", parameters: Self.teamAParameters(objects: objects))
            var volume = try TestVolume(
                emulator, pod: "web-0",
                attributes: [
                    "secretProviderClass": "app",
                    "csi.storage.k8s.io/serviceAccount.tokens": try await emulator.serviceAccountTokens(
                        subject: CSISeed.teamASubject),
                ])
            try await plugin.client {
                try await $0.publish(volumeID: volume.id, targetPath: volume.targetPath, attributes: volume.attributes)
            }
            let inode = try await status(volume.path("db-password")).inode

            // kubelet's republish: a fresh token, the same everything else.
            volume.attributes["csi.storage.k8s.io/serviceAccount.tokens"] = try await emulator.serviceAccountTokens(
                subject: CSISeed.teamASubject)
            try await plugin.client {
                try await $0.publish(volumeID: volume.id, targetPath: volume.targetPath, attributes: volume.attributes)
            }
            #expect(try await status(volume.path("db-password")).inode == inode)

            // The class gains an object: the next republish shows it.
            try await emulator.putSecretProviderClass(
                namespace: "team-a", name: "app",
                parameters: Self.teamAParameters(
                    objects: objects + [["objectName": "api-key", "objectType": "secret"]]))
            try await plugin.client {
                try await $0.publish(volumeID: volume.id, targetPath: volume.targetPath, attributes: volume.attributes)
            }
            #expect(try await volume.read("api-key") == "team-a-api-key")

            // Republishing with other arguments at the same target is a conflict, not a silent change.
            let conflict = await #expect(throws: RPCError.self) {
                try await plugin.client {
                    try await $0.publish(
                        volumeID: volume.id, targetPath: volume.targetPath, attributes: volume.attributes,
                        mountGroup: "5")
                }
            }
            #expect(conflict?.code == .alreadyExists)
            let elsewhere = await #expect(throws: RPCError.self) {
                try await plugin.client {
                    try await $0.publish(
                        volumeID: volume.id, targetPath: volume.targetPath + "-2", attributes: volume.attributes)
                }
            }
            #expect(elsewhere?.code == .alreadyExists)

            // If the target lost its mount, a republish mounts it again.
            #expect(umount2(volume.targetPath, 0) == 0)
            try await plugin.client {
                try await $0.publish(volumeID: volume.id, targetPath: volume.targetPath, attributes: volume.attributes)
            }
            #expect(try await volume.read("db-password") == "team-a-password")

            // A broken class (an object that does not exist) and a failing Key Vault: republish still answers OK
            // and the volume keeps what it had.
            try await emulator.putSecretProviderClass(
                namespace: "team-a", name: "app",
                parameters: Self.teamAParameters(
                    objects: objects + [["objectName": "missing", "objectType": "secret"]]))
            try await emulator.injectFault(["vault": "team-a-kv", "action": "status", "status": 503, "count": 50])
            try await plugin.client {
                try await $0.publish(volumeID: volume.id, targetPath: volume.targetPath, attributes: volume.attributes)
            }
            #expect(try await volume.read("db-password") == "team-a-password")
            #expect(try await volume.read("api-key") == "team-a-api-key")
            try await emulator.clearFaults()
        }
    }

    /// A token signed with a key of the test's own, under the cluster's key id, claiming `subject`
    /// and expiring after the genuine ones (so it would win a "latest expiry" contest).
    static func forgedToken(like genuine: String, subject: String) throws -> String {
        let genuineHeader =
            try JSONSerialization.jsonObject(with: Data(try JWS(compact: genuine).headerJSON)) as? [String: Any]
        let keyID = try #require(genuineHeader?["kid"] as? String)
        let now = Int(Date().timeIntervalSince1970)
        let claims: [String: Any] = [
            "iss": "https://oidc.emulator.localhost", "sub": subject, "aud": ["api://AzureADTokenExchange"],
            "iat": now, "nbf": now, "exp": now + 7200,
        ]
        return try JWS.sign(
            headerJSON: Array(try JSONSerialization.data(withJSONObject: ["alg": "RS256", "kid": keyID])),
            payloadJSON: Array(try JSONSerialization.data(withJSONObject: claims)),
            key: try PrivateKey.generate(.rsa(bits: 2048)), algorithm: .rs256)
    }

    @Test(
        "Forged, expired, misdirected and stolen tokens claiming team A are refused before any call; team A's volume and token are untouched"
    )
    func unverifiedTokens() async throws {
        // A long TTL, so that every Key Vault and Entra ID call is one the test caused.
        try await withCSIPlugin(arguments: ["--ttl", "60"]) { emulator, plugin in
            let tokensKey = "csi.storage.k8s.io/serviceAccount.tokens"
            let objects = [["objectName": "db-password", "objectType": "secret"]]
            try await emulator.putSecretProviderClass(
                namespace: "team-a", name: "app", parameters: Self.teamAParameters(objects: objects))
            var genuine = try TestVolume(
                emulator, pod: "web-0",
                attributes: [
                    "secretProviderClass": "app",
                    tokensKey: try await emulator.serviceAccountTokens(subject: CSISeed.teamASubject),
                ])
            try await plugin.client {
                try await $0.publish(
                    volumeID: genuine.id, targetPath: genuine.targetPath, attributes: genuine.attributes)
            }
            #expect(try await genuine.read("db-password") == "team-a-password")
            #expect(
                try await emulator.requests(endpoint: "kubernetes").contains {
                    $0["path"] as? String == "/openid/v1/jwks"
                }, "verified with the cluster's keys")

            let now = Int(Date().timeIntervalSince1970)
            let subject = CSISeed.teamASubject
            let cases: [(name: String, token: String, message: String)] = [
                (
                    "forged",
                    try Self.forgedToken(
                        like: try await emulator.serviceAccountToken(["subject": subject]), subject: subject),
                    "its signature does not verify with the cluster's keys"
                ),
                (
                    "expired",
                    try await emulator.serviceAccountToken([
                        "subject": subject, "issuedAt": now - 7200, "lifetimeSeconds": 3600,
                    ]), "it expired at"
                ),
                (
                    "wrong audience",
                    try await emulator.serviceAccountToken([
                        "subject": subject, "audience": "https://kubernetes.default.svc",
                    ]),
                    "it has the wrong audience https://kubernetes.default.svc (expected api://AzureADTokenExchange)"
                ),
                (
                    // Claims are checked before the signature, so anyone can put text in the refusal: it must
                    // not forge a log line or reach a terminal.
                    "an audience that writes a log line",
                    try await emulator.serviceAccountToken([
                        "subject": subject,
                        "audience": "https://x\n2026-12-07T23:59:59+0000 critical akvfs.csi: FORGED\u{1B}[2J",
                    ]),
                    "it has the wrong audience https://x\\n2026-12-07T23:59:59+0000 critical akvfs.csi: FORGED\\x1b[2J"
                ),
                (
                    "wrong issuer",
                    try await emulator.serviceAccountToken([
                        "subject": subject, "issuer": "https://oidc.elsewhere.example",
                    ]),
                    "its issuer https://oidc.elsewhere.example is not the cluster's issuer https://oidc.emulator.localhost"
                ),
                (
                    "another pod's",
                    try await emulator.serviceAccountToken([
                        "subject": subject,
                        "pod": ["name": "web-0", "uid": genuine.attributes["csi.storage.k8s.io/pod.uid"]!],
                    ]),
                    "it is bound to pod team-a/web-0"
                ),
            ]
            let upstream =
                try await emulator.requests(endpoint: "keyvault").count + emulator.requests(endpoint: "token").count
            for (name, token, message) in cases {
                let intruder = try TestVolume(
                    emulator, pod: "intruder",
                    attributes: ["secretProviderClass": "app", tokensKey: kubeletTokens(token)])
                let refused = await #expect(throws: RPCError.self, "\(name)") {
                    try await plugin.client {
                        try await $0.publish(
                            volumeID: intruder.id, targetPath: intruder.targetPath, attributes: intruder.attributes)
                    }
                }
                #expect(refused?.code == .unauthenticated, "\(name): \(refused?.message ?? "")")
                #expect(refused?.message.contains(message) == true, "\(name): \(refused?.message ?? "")")
                #expect(
                    refused?.message.contains(token) == false && refused?.message.contains("eyJ") == false,
                    "\(name): no token in the message")
                #expect(
                    !intruder.isMounted && !FileManager.default.fileExists(atPath: intruder.targetPath),
                    "\(name): nothing mounted")

                // kubelet's republish of the working volume with this token: OK, and nothing changes.
                var republish = genuine
                republish.attributes[tokensKey] = kubeletTokens(token)
                try await plugin.client {
                    try await $0.publish(
                        volumeID: republish.id, targetPath: republish.targetPath, attributes: republish.attributes)
                }
                #expect(try await genuine.read("db-password") == "team-a-password", "\(name)")
            }
            let after =
                try await emulator.requests(endpoint: "keyvault").count + emulator.requests(endpoint: "token").count
            #expect(after == upstream, "no Key Vault or Entra ID call was made for a refused token")
            #expect(
                try FileManager.default.contentsOfDirectory(atPath: plugin.mountRoot).count == 1,
                "only the genuine volume's view")
            #expect(plugin.log.contains("refused a service-account token"))
            #expect(!plugin.log.contains("eyJ"), "tokens never appear in the log")
            #expect(
                !plugin.log.contains("\n2026-12-07T23:59:59+0000 critical") && !plugin.log.contains("\u{1B}"),
                "a token's claims cannot write a line of the log")

            // No lockout: when Key Vault rejects the cached access token, the plugin exchanges the
            // token it holds for team A at Entra again, and that is still a genuine one.
            let exchanges = try await emulator.requests(endpoint: "token").count
            try await emulator.injectFault([
                "vault": "team-a-kv", "pathPrefix": "/secrets/api-key", "action": "status", "status": 401, "count": 1,
            ])
            try await emulator.putSecretProviderClass(
                namespace: "team-a", name: "app",
                parameters: Self.teamAParameters(
                    objects: objects + [["objectName": "api-key", "objectType": "secret"]]))
            genuine.attributes[tokensKey] = try await emulator.serviceAccountTokens(subject: CSISeed.teamASubject)
            try await plugin.client {
                try await $0.publish(
                    volumeID: genuine.id, targetPath: genuine.targetPath, attributes: genuine.attributes)
            }
            #expect(try await genuine.read("api-key") == "team-a-api-key", "the republish with a genuine token worked")
            let tokenRequests = try await emulator.requests(endpoint: "token").dropFirst(exchanges)
            #expect(tokenRequests.map { $0["status"] as? Int } == [200], "one new exchange, accepted")

            let second = try TestVolume(
                emulator, pod: "web-1",
                attributes: [
                    "secretProviderClass": "app",
                    tokensKey: try await emulator.serviceAccountTokens(subject: CSISeed.teamASubject),
                ])
            try await plugin.client {
                try await $0.publish(volumeID: second.id, targetPath: second.targetPath, attributes: second.attributes)
            }
            #expect(try await second.read("db-password") == "team-a-password")
        }
    }

    @Test("Without a Kubernetes API, Entra ID proves tokens: it refuses a forged one and accepts a genuine one")
    func entraProof() async throws {
        try await withCSIPlugin(arguments: ["--ttl", "60"], kubernetes: false) { emulator, plugin in
            let tokensKey = "csi.storage.k8s.io/serviceAccount.tokens"
            let parameters = Self.teamAParameters(objects: [["objectName": "db-password", "objectType": "secret"]])
            let genuineToken = try await emulator.serviceAccountToken(["subject": CSISeed.teamASubject])
            let genuine = try TestVolume(
                emulator, pod: "web-0", attributes: parameters.merging([tokensKey: kubeletTokens(genuineToken)]) { $1 })
            try await plugin.client {
                try await $0.publish(
                    volumeID: genuine.id, targetPath: genuine.targetPath, attributes: genuine.attributes)
            }
            #expect(try await genuine.read("db-password") == "team-a-password")
            #expect(try await emulator.requests(endpoint: "kubernetes").isEmpty)
            #expect(
                try await emulator.requests(endpoint: "token").map { $0["status"] as? Int } == [200, 200],
                "the proof, then the volume's own exchange")

            let forged = try Self.forgedToken(like: genuineToken, subject: CSISeed.teamASubject)
            let intruder = try TestVolume(
                emulator, pod: "intruder", attributes: parameters.merging([tokensKey: kubeletTokens(forged)]) { $1 })
            let refused = await #expect(throws: RPCError.self) {
                try await plugin.client {
                    try await $0.publish(
                        volumeID: intruder.id, targetPath: intruder.targetPath, attributes: intruder.attributes)
                }
            }
            #expect(refused?.code == .unauthenticated, "\(refused?.message ?? "")")
            #expect(
                refused?.message.contains("Entra ID did not accept it for client \(CSISeed.teamA)") == true,
                "\(refused?.message ?? "")")
            #expect(refused?.message.contains("the plugin has no Kubernetes API") == true, "\(refused?.message ?? "")")
            #expect(refused?.message.contains("eyJ") == false)
            #expect(!intruder.isMounted)
            #expect(
                try await emulator.requests(endpoint: "token").map { $0["status"] as? Int } == [200, 200, 400],
                "Entra ID saw the forged token once")
            #expect(
                try await emulator.gets(vault: "team-a-kv", path: "/secrets/db-password") == 1,
                "no Key Vault call for it")

            // An expired token is refused here, without asking Entra ID; the proven genuine token
            // serves another pod without a new exchange.
            let expired = try await emulator.serviceAccountToken([
                "subject": CSISeed.teamASubject, "issuedAt": Int(Date().timeIntervalSince1970) - 7200,
            ])
            let late = try TestVolume(
                emulator, pod: "late", attributes: parameters.merging([tokensKey: kubeletTokens(expired)]) { $1 })
            await #expect(throws: RPCError.self) {
                try await plugin.client {
                    try await $0.publish(volumeID: late.id, targetPath: late.targetPath, attributes: late.attributes)
                }
            }
            let sibling = try TestVolume(emulator, pod: "web-1", attributes: genuine.attributes)
            try await plugin.client {
                try await $0.publish(
                    volumeID: sibling.id, targetPath: sibling.targetPath, attributes: sibling.attributes)
            }
            #expect(try await sibling.read("db-password") == "team-a-password")
            #expect(try await emulator.requests(endpoint: "token").count == 3)
            #expect(try await genuine.read("db-password") == "team-a-password")
        }
    }

    @Test("When the API server refuses the issuer's keys, Entra ID proves tokens and the refusal says why")
    func discoveryForbidden() async throws {
        try await withCSIPlugin(arguments: ["--ttl", "60"]) { emulator, plugin in
            let tokensKey = "csi.storage.k8s.io/serviceAccount.tokens"
            try await emulator.injectFault([
                "pathPrefix": "/.well-known/openid-configuration", "action": "status", "status": 403, "count": 100,
            ])
            try await emulator.putSecretProviderClass(
                namespace: "team-a", name: "app",
                parameters: Self.teamAParameters(objects: [["objectName": "db-password", "objectType": "secret"]]))
            let genuineToken = try await emulator.serviceAccountToken(["subject": CSISeed.teamASubject])
            let genuine = try TestVolume(
                emulator, pod: "web-0",
                attributes: ["secretProviderClass": "app", tokensKey: kubeletTokens(genuineToken)])
            try await plugin.client {
                try await $0.publish(
                    volumeID: genuine.id, targetPath: genuine.targetPath, attributes: genuine.attributes)
            }
            #expect(try await genuine.read("db-password") == "team-a-password")
            #expect(
                try await emulator.requests(endpoint: "token").map { $0["status"] as? Int } == [200, 200],
                "the proof, then the volume's own exchange")
            #expect(plugin.log.contains("system:service-account-issuer-discovery"), "the log says which role to bind")

            let forged = try Self.forgedToken(like: genuineToken, subject: CSISeed.teamASubject)
            let intruder = try TestVolume(
                emulator, pod: "intruder", attributes: ["secretProviderClass": "app", tokensKey: kubeletTokens(forged)])
            let refused = await #expect(throws: RPCError.self) {
                try await plugin.client {
                    try await $0.publish(
                        volumeID: intruder.id, targetPath: intruder.targetPath, attributes: intruder.attributes)
                }
            }
            #expect(refused?.code == .unauthenticated, "\(refused?.message ?? "")")
            #expect(refused?.message.contains("Entra ID did not accept it") == true, "\(refused?.message ?? "")")
            #expect(
                refused?.message.contains("may not read the service-account issuer's discovery document") == true,
                "\(refused?.message ?? "")")
            #expect(!intruder.isMounted)
            #expect(try await emulator.gets(vault: "team-a-kv", path: "/secrets/db-password") == 1)
        }
    }

    @Test(
        "A rotated secret reaches every volume that shows it; a subPath file mount keeps the version it was mounted with"
    )
    func rotation() async throws {
        try await withCSIPlugin { emulator, plugin in
            try await emulator.putSecretProviderClass(
                namespace: "team-a", name: "app",
                parameters: Self.teamAParameters(objects: [["objectName": "db-password", "objectType": "secret"]]))
            let tokens = try await emulator.serviceAccountTokens(subject: CSISeed.teamASubject)
            var volumes: [TestVolume] = []
            for pod in 0..<2 {
                let volume = try TestVolume(
                    emulator, pod: "r-\(pod)",
                    attributes: ["secretProviderClass": "app", "csi.storage.k8s.io/serviceAccount.tokens": tokens])
                try await plugin.client {
                    try await $0.publish(
                        volumeID: volume.id, targetPath: volume.targetPath, attributes: volume.attributes)
                }
                #expect(try await volume.read("db-password") == "team-a-password")
                volumes.append(volume)
            }
            // kubelet's subPath: the one file bind-mounted into the container.
            let subPath = emulator.directory.appendingPathComponent("subpath-file").path
            FileManager.default.createFile(atPath: subPath, contents: nil)
            #expect(mount(volumes[0].path("db-password"), subPath, nil, UInt(MS_BIND), nil) == 0)
            #expect(try await onOwnThread { try String(contentsOfFile: subPath, encoding: .utf8) } == "team-a-password")

            try await emulator.setSecret(vault: "team-a-kv", name: "db-password", value: "rotated-password")
            var seen: [String] = []
            for _ in 0..<100 {
                seen = try await [volumes[0].read("db-password"), volumes[1].read("db-password")]
                if seen.allSatisfy({ $0 == "rotated-password" }) { break }
                try await Task.sleep(for: .milliseconds(200))
            }
            #expect(seen == ["rotated-password", "rotated-password"], "within 20 s of a 2 s TTL")
            // A bind mount of the file holds its inode, which is one version (as with the
            // Secrets Store CSI driver's files): the pod sees the new one when it restarts.
            #expect(try await onOwnThread { try String(contentsOfFile: subPath, encoding: .utf8) } == "team-a-password")
            umount2(subPath, 0)
        }
    }

    @Test("Unpublish unmounts, removes the target and drops the content; repeating it succeeds")
    func unpublish() async throws {
        try await withCSIPlugin(arguments: ["--ttl", "60"]) { emulator, plugin in
            try await emulator.putSecretProviderClass(
                namespace: "team-a", name: "app",
                parameters: Self.teamAParameters(objects: [["objectName": "db-password", "objectType": "secret"]]))
            let tokens = try await emulator.serviceAccountTokens(subject: CSISeed.teamASubject)
            let volume = try TestVolume(
                emulator, pod: "u-0",
                attributes: ["secretProviderClass": "app", "csi.storage.k8s.io/serviceAccount.tokens": tokens])
            try await plugin.client {
                try await $0.publish(volumeID: volume.id, targetPath: volume.targetPath, attributes: volume.attributes)
            }
            let views = try FileManager.default.contentsOfDirectory(atPath: plugin.mountRoot)
            #expect(views.count == 1)

            try await plugin.client { try await $0.unpublish(volumeID: volume.id, targetPath: volume.targetPath) }
            #expect(!volume.isMounted)
            #expect(!FileManager.default.fileExists(atPath: volume.targetPath))
            #expect(try FileManager.default.contentsOfDirectory(atPath: plugin.mountRoot).isEmpty, "the view is gone")
            try await plugin.client { try await $0.unpublish(volumeID: volume.id, targetPath: volume.targetPath) }
            try await plugin.client {
                try await $0.unpublish(volumeID: "never-published", targetPath: volume.targetPath)
            }

            // The content went with the last volume of its identity: publishing again fetches again.
            try await plugin.client {
                try await $0.publish(volumeID: volume.id, targetPath: volume.targetPath, attributes: volume.attributes)
            }
            #expect(try await emulator.gets(vault: "team-a-kv", path: "/secrets/db-password") == 2)
            try await plugin.client { try await $0.unpublish(volumeID: volume.id, targetPath: volume.targetPath) }
            #expect(await plugin.stop() == 0, "with nothing published the plugin stops cleanly")
            #expect(!TestMounts.isMountPoint(plugin.mountRoot))
        }
    }

    @Test(
        "SIGTERM, SIGINT and SIGHUP each stop the plugin, a second signal changing nothing: with nothing published, the socket, the ready file and the mount go",
        arguments: [SIGTERM, SIGINT, SIGHUP])
    func stopSignals(_ number: Int32) async throws {
        try await withCSIPlugin { _, plugin in
            plugin.process.signal(number)
            plugin.process.signal(SIGTERM)
            #expect(await plugin.process.exit() == 0, "\(plugin.log)")
            #expect(!FileManager.default.fileExists(atPath: plugin.socketPath))
            #expect(!FileManager.default.fileExists(atPath: plugin.readyFile))
            #expect(!TestMounts.isMountPoint(plugin.mountRoot))
        }
    }

    @Test("When its shared mount is unmounted from outside, the plugin says so and stops, removing its socket")
    func mountLost() async throws {
        try await withCSIPlugin { _, plugin in
            #expect(umount2(plugin.mountRoot, Int32(MNT_DETACH)) == 0)
            #expect(await plugin.process.exit() == 0, "\(plugin.log)")
            #expect(plugin.log.contains("the shared FUSE mount ended unexpectedly; stopping the plugin"))
            #expect(!FileManager.default.fileExists(atPath: plugin.socketPath))
            #expect(!FileManager.default.fileExists(atPath: plugin.readyFile))
        }
    }

    @Test(
        "Bad requests and bad parameters get the right gRPC code and a message that says what to fix, and mount nothing"
    )
    func badInput() async throws {
        try await withCSIPlugin { emulator, plugin in
            try await emulator.putSecretProviderClass(
                namespace: "team-a", name: "app", parameters: Self.teamAParameters())
            try await emulator.putSecretProviderClass(
                namespace: "team-a", name: "other-provider", provider: "vault", parameters: Self.teamAParameters())
            let tokens = try await emulator.serviceAccountTokens(subject: CSISeed.teamASubject)
            let good = try TestVolume(
                emulator, pod: "bad",
                attributes: ["secretProviderClass": "app", "csi.storage.k8s.io/serviceAccount.tokens": tokens])
            func inline(_ change: (inout [String: String]) -> Void) -> [String: String] {
                var parameters = Self.teamAParameters(objects: [["objectName": "db-password", "objectType": "secret"]])
                parameters["csi.storage.k8s.io/serviceAccount.tokens"] = tokens
                change(&parameters)
                let kubelet = good.attributes.filter {
                    $0.key.hasPrefix("csi.storage") && $0.key != "csi.storage.k8s.io/serviceAccount.tokens"
                }
                return kubelet.merging(parameters) { $1 }
            }

            typealias Case = (
                name: String, code: RPCError.Code, message: String, request: Csi_V1_NodePublishVolumeRequest
            )
            func request(
                _ attributes: [String: String], _ change: (inout Csi_V1_NodePublishVolumeRequest) -> Void = { _ in }
            ) -> Csi_V1_NodePublishVolumeRequest {
                var request = Csi_V1_NodePublishVolumeRequest()
                request.volumeID = good.id
                request.targetPath = good.targetPath
                request.readonly = true
                request.volumeContext = attributes
                request.volumeCapability.mount = .init()
                change(&request)
                return request
            }
            let cases: [Case] = [
                (
                    "no capability", .invalidArgument, "Volume capability missing in request",
                    request(good.attributes) { $0.clearVolumeCapability() }
                ),
                (
                    "no volume id", .invalidArgument, "Volume ID missing in request",
                    request(good.attributes) { $0.volumeID = "" }
                ),
                (
                    "no target", .invalidArgument, "Target path missing in request",
                    request(good.attributes) { $0.targetPath = "" }
                ),
                (
                    "relative target", .invalidArgument, "not an absolute, normalized path",
                    request(good.attributes) { $0.targetPath = "pods/x/../y" }
                ),
                ("no attributes", .invalidArgument, "Volume attributes missing in request", request([:])),
                (
                    "not read-only", .invalidArgument, "Readonly is not true in request",
                    request(good.attributes) { $0.readonly = false }
                ),
                (
                    "block", .invalidArgument, "block volumes are not supported",
                    request(good.attributes) { $0.volumeCapability.block = .init() }
                ),
                (
                    "bad fsGroup", .invalidArgument, "not a numeric group ID",
                    request(good.attributes) { $0.volumeCapability.mount.volumeMountGroup = "staff" }
                ),
                ("no pod info", .invalidArgument, "pod name is not provided", request(["secretProviderClass": "app"])),
                (
                    "missing class", .notFound, "failed to get secretproviderclass team-a/absent",
                    request(good.attributes.merging(["secretProviderClass": "absent"]) { $1 })
                ),
                (
                    "other provider", .invalidArgument, "is for provider vault",
                    request(good.attributes.merging(["secretProviderClass": "other-provider"]) { $1 })
                ),
                (
                    "pod overrides the vault", .invalidArgument, "volumeAttributes may not set keyvaultName",
                    request(good.attributes.merging(["keyvaultName": "elsewhere"]) { $1 })
                ),
                (
                    "bad uid", .invalidArgument, "uid \"web\" is not valid",
                    request(good.attributes.merging(["uid": "web"]) { $1 })
                ),
                (
                    "typo in a parameter", .invalidArgument, "unknown parameter keyvaultname",
                    request(inline { $0["keyvaultname"] = $0.removeValue(forKey: "keyvaultName") })
                ),
                ("no objects", .invalidArgument, "objects is not set", request(inline { $0["objects"] = nil })),
                ("empty object list", .invalidArgument, "array", request(inline { $0["objects"] = "array:" })),
                (
                    "traversal", .invalidArgument, "..",
                    request(
                        inline {
                            $0["objects"] = objectsParameter([
                                [
                                    "objectName": "db-password", "objectType": "secret",
                                    "objectAlias": "../../etc/passwd",
                                ]
                            ])
                        })
                ),
                (
                    "control character", .invalidArgument, "must not contain control characters",
                    request(
                        inline {
                            $0["objects"] = objectsParameter([
                                [
                                    "objectName": "db-password", "objectType": "secret",
                                    "objectAlias": "\"evil\\x1b[2Jname\"",
                                ]
                            ])
                        })
                ),
                (
                    "newline in the pod name", .invalidArgument, "is not a Kubernetes object name",
                    request(good.attributes.merging(["csi.storage.k8s.io/pod.name": "web\nforged log line"]) { $1 })
                ),
                (
                    "bad permission", .invalidArgument, "filePermission",
                    request(
                        inline {
                            $0["objects"] = objectsParameter([
                                ["objectName": "db-password", "objectType": "secret", "filePermission": "0900"]
                            ])
                        })
                ),
                (
                    "bad type", .invalidArgument, "objectType",
                    request(
                        inline {
                            $0["objects"] = objectsParameter([["objectName": "db-password", "objectType": "password"]])
                        })
                ),
                (
                    "bad vault name", .invalidArgument, "Invalid vault name",
                    request(inline { $0["keyvaultName"] = "kv_test" })
                ),
                (
                    "node identity not allowed", .failedPrecondition,
                    "AKVFS_ALLOW_NODE_IDENTITY to \"true\" in the akvfs container of the akvfs-csi DaemonSet",
                    request(
                        inline {
                            $0["useVMManagedIdentity"] = "true"
                            $0["clientID"] = nil
                        })
                ),
                (
                    "no token", .unauthenticated, "service account tokens not found",
                    request(inline { $0["csi.storage.k8s.io/serviceAccount.tokens"] = nil })
                ),
                (
                    "no secret", .unauthenticated, "nodePublishSecretRef secret is not set",
                    request(inline { $0["clientID"] = nil })
                ),
                (
                    "missing object", .notFound, "objectName:absent",
                    request(
                        inline { $0["objects"] = objectsParameter([["objectName": "absent", "objectType": "secret"]]) })
                ),
            ]
            try await plugin.client { client in
                for testCase in cases {
                    let error = await #expect(throws: RPCError.self, "\(testCase.name)") {
                        try await client.node.nodePublishVolume(testCase.request)
                    }
                    #expect(error?.code == testCase.code, "\(testCase.name): \(error?.message ?? "")")
                    #expect(
                        error?.message.contains(testCase.message) == true, "\(testCase.name): \(error?.message ?? "")")
                    #expect(error?.message.contains("eyJ") == false, "\(testCase.name): no token in the message")
                }
            }
            #expect(
                !good.isMounted && !FileManager.default.fileExists(atPath: good.targetPath),
                "nothing was mounted or created")
            #expect(try FileManager.default.contentsOfDirectory(atPath: plugin.mountRoot).isEmpty)
            #expect(!plugin.log.contains("eyJ"), "tokens never appear in the log")
        }
    }

    /// Publishes a new volume at each case's target and expects the case's refusal.
    static func expectRefusedPublishes(
        _ cases: [(name: String, target: String, code: RPCError.Code, message: String)], attributes: [String: String],
        client: CSIClient
    ) async {
        for testCase in cases {
            let error = await #expect(throws: RPCError.self, "\(testCase.name)") {
                try await client.publish(
                    volumeID: "csi-\(UUID().uuidString.prefix(8))", targetPath: testCase.target, attributes: attributes)
            }
            #expect(error?.code == testCase.code, "\(testCase.name): \(error?.message ?? "")")
            #expect(error?.message.contains(testCase.message) == true, "\(testCase.name): \(error?.message ?? "")")
        }
    }

    @Test(
        "Target paths are resolved beneath kubelet's pods directory without following symlinks; nothing lands outside")
    func targetPaths() async throws {
        try await withCSIPlugin { emulator, plugin in
            try await emulator.putSecretProviderClass(
                namespace: "team-a", name: "app",
                parameters: Self.teamAParameters(objects: [["objectName": "db-password", "objectType": "secret"]]))
            let tokens = try await emulator.serviceAccountTokens(subject: CSISeed.teamASubject)
            let attributes = ["secretProviderClass": "app", "csi.storage.k8s.io/serviceAccount.tokens": tokens]
            let volume = try TestVolume(emulator, pod: "paths", attributes: attributes)
            // Where a hostile request would like the secrets to land.
            let outside = emulator.directory.appendingPathComponent("outside")
            try FileManager.default.createDirectory(
                at: outside.appendingPathComponent("mount"), withIntermediateDirectories: true)
            let pods = emulator.directory.appendingPathComponent("pods")
            try FileManager.default.createSymbolicLink(
                at: pods.appendingPathComponent("linked-pod"), withDestinationURL: outside)
            try FileManager.default.createSymbolicLink(
                at: pods.appendingPathComponent("\(volume.id)/linked-target"),
                withDestinationURL: outside.appendingPathComponent("mount"))

            let cases: [(name: String, target: String, code: RPCError.Code, message: String)] = [
                (
                    "outside kubelet's directory", outside.appendingPathComponent("mount").path, .invalidArgument,
                    "is not beneath kubelet's pods directory"
                ),
                (
                    "kubelet's directory, not pods", emulator.directory.appendingPathComponent("plugins/mount").path,
                    .invalidArgument, "is not beneath kubelet's pods directory"
                ),
                (
                    "a symlinked directory on the way", pods.appendingPathComponent("linked-pod/mount").path,
                    .invalidArgument, "passes through a symbolic link"
                ),
                (
                    "a symlink as the target", pods.appendingPathComponent("\(volume.id)/linked-target").path,
                    .invalidArgument, "is a symbolic link"
                ),
                (
                    "a pod directory that does not exist", pods.appendingPathComponent("absent/mount").path, .notFound,
                    "does not exist"
                ),
            ]
            try await plugin.client { client in
                await Self.expectRefusedPublishes(cases, attributes: attributes, client: client)
                let unpublish = await #expect(throws: RPCError.self) {
                    try await client.unpublish(
                        volumeID: "csi-x", targetPath: pods.appendingPathComponent("linked-pod/mount").path)
                }
                #expect(unpublish?.code == .invalidArgument)
            }
            #expect(
                !TestMounts.isMountPoint(outside.appendingPathComponent("mount").path), "nothing was mounted outside")
            #expect(try FileManager.default.contentsOfDirectory(atPath: plugin.mountRoot).isEmpty)

            // The genuine target works, and its bind mount is read-only, nosuid, nodev and noexec.
            try await plugin.client {
                try await $0.publish(volumeID: volume.id, targetPath: volume.targetPath, attributes: volume.attributes)
            }
            #expect(try await volume.read("db-password") == "team-a-password")
            let options = TestMounts.options(of: volume.targetPath)
            #expect(["ro", "nosuid", "nodev", "noexec"].allSatisfy(options.contains), "\(options)")

            // Targets a mount would hide something on are refused before anything is fetched.
            let full = pods.appendingPathComponent("\(volume.id)/full")
            try FileManager.default.createDirectory(at: full, withIntermediateDirectories: true)
            try Data("kept".utf8).write(to: full.appendingPathComponent("existing"))
            let occupied: [(name: String, target: String, code: RPCError.Code, message: String)] = [
                (
                    "another volume's target", volume.targetPath, .alreadyExists,
                    "already has volume \(volume.id) mounted"
                ),
                (
                    "a pod's own directory", pods.appendingPathComponent(volume.id).path, .invalidArgument,
                    "is a pod's own directory"
                ),
                ("a directory with files", full.path, .failedPrecondition, "is a directory that is not empty"),
            ]
            try await plugin.client { await Self.expectRefusedPublishes(occupied, attributes: attributes, client: $0) }
            #expect(FileManager.default.fileExists(atPath: full.appendingPathComponent("existing").path))

            // Unpublish takes off only the named volume's own mount: another volume ID leaves it alone, and so
            // does any other filesystem mounted on a target.
            let foreign = pods.appendingPathComponent("\(volume.id)/foreign")
            try FileManager.default.createDirectory(at: foreign, withIntermediateDirectories: true)
            #expect(try await ChildProcess.run("/bin/mount", ["-t", "tmpfs", "foreign", foreign.path]).status == 0)
            defer { _ = umount2(foreign.path, Int32(MNT_DETACH)) }
            try await plugin.client { client in
                try await client.unpublish(volumeID: "csi-someone-else", targetPath: volume.targetPath)
                try await client.unpublish(volumeID: "csi-foreign", targetPath: foreign.path)
            }
            #expect(volume.isMounted, "another volume's ID does not unmount this one")
            #expect(try await volume.read("db-password") == "team-a-password")
            #expect(TestMounts.isMountPoint(foreign.path), "a mount that is not the plugin's is left alone")

            try await plugin.client { try await $0.unpublish(volumeID: volume.id, targetPath: volume.targetPath) }
            #expect(!volume.isMounted)
        }
    }

    @Test(
        "Objects per volume, request bytes, published memory and concurrent publishes are bounded, checked before any call, and name their setting"
    )
    func limits() async throws {
        let arguments = [
            "--ttl", "2", "--publish-timeout", "5", "--max-objects-per-volume", "20", "--max-request-bytes", "65536",
            "--max-published-memory", "1", "--max-concurrent-publishes", "1",
        ]
        try await withCSIPlugin(arguments: arguments) { emulator, plugin in
            let tokens = try await emulator.serviceAccountTokens(subject: CSISeed.teamASubject)
            func volume(_ pod: String, objects count: Int, extra: [String: String] = [:]) throws -> TestVolume {
                var attributes = Self.teamAParameters(
                    objects: (0..<count).map {
                        ["objectName": "db-password", "objectType": "secret", "objectAlias": "copy-\($0)"]
                    })
                attributes["csi.storage.k8s.io/serviceAccount.tokens"] = tokens
                return try TestVolume(emulator, pod: pod, attributes: attributes.merging(extra) { $1 })
            }
            let refusals: [(name: String, volume: TestVolume, code: RPCError.Code, message: String)] = [
                (
                    "too many objects", try volume("many", objects: 21), .invalidArgument,
                    "at most 20 per volume (--max-objects-per-volume)"
                ),
                (
                    "too many bytes",
                    try volume("large", objects: 1, extra: ["padding": String(repeating: "x", count: 70_000)]),
                    .invalidArgument,
                    "at most 65536 (--max-request-bytes)"
                ),
                (
                    "far too many bytes",
                    try volume("larger", objects: 1, extra: ["padding": String(repeating: "x", count: 2 << 20)]),
                    .invalidArgument,
                    "at most 65536 (--max-request-bytes)"
                ),
                (
                    "would not fit", try volume("big", objects: 17), .resourceExhausted,
                    "at most 1 MiB is kept (--max-published-memory)"
                ),
            ]
            let before = try await emulator.requestCount()
            try await plugin.client { client in
                for refusal in refusals {
                    let error = await #expect(throws: RPCError.self, "\(refusal.name)") {
                        try await client.publish(
                            volumeID: refusal.volume.id, targetPath: refusal.volume.targetPath,
                            attributes: refusal.volume.attributes)
                    }
                    #expect(error?.code == refusal.code, "\(refusal.name): \(error?.message ?? "")")
                    #expect(
                        error?.message.contains(refusal.message) == true, "\(refusal.name): \(error?.message ?? "")")
                    #expect(!refusal.volume.isMounted)
                }
                // Beyond what gRPC takes at all: refused by gRPC, and the plugin goes on serving.
                let huge = try volume("huge", objects: 1, extra: ["padding": String(repeating: "x", count: 20 << 20)])
                await #expect(throws: (any Error).self) {
                    try await client.publish(
                        volumeID: huge.id, targetPath: huge.targetPath, attributes: huge.attributes)
                }
            }
            #expect(
                try await emulator.requestCount() == before,
                "no call to Key Vault, Entra ID or the Kubernetes API for a refused volume")
            #expect(try await plugin.client { try await $0.identity.probe(.init()).ready.value })

            // One publish at a time: a second is refused while the first waits for Key Vault,
            // and the first's fetch stops when it gives up.
            try await emulator.injectFault([
                "vault": "team-a-kv", "pathPrefix": "/secrets/", "action": "hang", "hangSeconds": 30,
            ])
            let slow = try volume("slow", objects: 1)
            let waiting = Task {
                try await plugin.client {
                    try await $0.publish(volumeID: slow.id, targetPath: slow.targetPath, attributes: slow.attributes)
                }
            }
            var hung = 0
            for _ in 0..<100 where hung == 0 {
                try await Task.sleep(for: .milliseconds(100))
                hung = try await emulator.requests(vault: "team-a-kv", path: "/secrets/db-password").filter {
                    $0["fault"] is String
                }.count
            }
            let second = try volume("second", objects: 1)
            let busy = await #expect(throws: RPCError.self) {
                try await plugin.client {
                    try await $0.publish(
                        volumeID: second.id, targetPath: second.targetPath, attributes: second.attributes)
                }
            }
            #expect(busy?.code == .resourceExhausted)
            #expect(busy?.message.contains("--max-concurrent-publishes 1") == true, "\(busy?.message ?? "")")
            let timedOut = await #expect(throws: RPCError.self) { try await waiting.value }
            #expect(timedOut?.code == .deadlineExceeded, "\(timedOut?.message ?? "")")
            let getsAfterGivingUp = try await emulator.gets(vault: "team-a-kv", path: "/secrets/db-password")
            try await Task.sleep(for: .seconds(3))
            #expect(
                try await emulator.gets(vault: "team-a-kv", path: "/secrets/db-password") == getsAfterGivingUp,
                "the given-up fetch is not retried")
            try await emulator.clearFaults()
            try await plugin.client {
                try await $0.publish(volumeID: second.id, targetPath: second.targetPath, attributes: second.attributes)
            }
            #expect(try await second.read("copy-0") == "team-a-password")
        }
    }

    @Test("A publish that outlives --publish-timeout fails with DeadlineExceeded; kubelet's retry succeeds")
    func publishTimeout() async throws {
        try await withCSIPlugin(arguments: ["--ttl", "2", "--publish-timeout", "5"]) { emulator, plugin in
            try await emulator.putSecretProviderClass(
                namespace: "team-a", name: "app",
                parameters: Self.teamAParameters(objects: [["objectName": "db-password", "objectType": "secret"]]))
            let tokens = try await emulator.serviceAccountTokens(subject: CSISeed.teamASubject)
            let volume = try TestVolume(
                emulator, pod: "slow",
                attributes: ["secretProviderClass": "app", "csi.storage.k8s.io/serviceAccount.tokens": tokens])
            try await emulator.injectFault([
                "vault": "team-a-kv", "pathPrefix": "/secrets/", "action": "hang", "hangSeconds": 8,
            ])
            let slow = await #expect(throws: RPCError.self) {
                try await plugin.client {
                    try await $0.publish(
                        volumeID: volume.id, targetPath: volume.targetPath, attributes: volume.attributes)
                }
            }
            #expect(slow?.code == .deadlineExceeded, "\(slow?.message ?? "")")
            #expect(!volume.isMounted)
            try await plugin.client {
                try await $0.publish(volumeID: volume.id, targetPath: volume.targetPath, attributes: volume.attributes)
            }
            #expect(try await volume.read("db-password") == "team-a-password")
        }
    }

    @Test(
        "The node's managed identity only when allowed: AKVFS_ALLOW_NODE_IDENTITY=true, as the manifests set it, or --allow-node-identity"
    )
    func nodeIdentity() async throws {
        try await withCSIPlugin(environment: ["AKVFS_ALLOW_NODE_IDENTITY": "true"]) { emulator, plugin in
            let volume = try TestVolume(
                emulator, pod: "node-0",
                attributes: [
                    "keyvaultName": "team-a-kv", "tenantId": Self.tenant, "useVMManagedIdentity": "true",
                    "objects": objectsParameter([["objectName": "db-password", "objectType": "secret"]]),
                ])
            try await plugin.client {
                try await $0.publish(volumeID: volume.id, targetPath: volume.targetPath, attributes: volume.attributes)
            }
            #expect(try await volume.read("db-password") == "team-a-password")
        }
    }

    @Test("A node-identity setting that is neither true nor false is refused at start, naming the setting")
    func badNodeIdentitySetting() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "akvfs-csi-env-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let log = directory.appendingPathComponent("csi.log").path
        let process = try ChildProcess.spawn(
            builtExecutable("akvfs"),
            [
                "csi", "--endpoint", "unix://\(directory.path)/csi.sock", "--node-id", "n", "--state-dir",
                directory.appendingPathComponent("state").path,
            ],
            environment: ["PATH": "/usr/bin:/bin", "AKVFS_ALLOW_NODE_IDENTITY": "yes please"], stdout: .file(log),
            stderr: .file(log))
        #expect(await process.exit() == 64)
        let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        #expect(text.contains("AKVFS_ALLOW_NODE_IDENTITY must be true or false; got yes please."), "\(text)")
        #expect(!FileManager.default.fileExists(atPath: directory.appendingPathComponent("csi.sock").path))
    }

    @Test(
        "After a plugin restart, republish brings volumes back, into running containers too, and unpublish cleans up dead ones"
    )
    func restart() async throws {
        try await withCSIPlugin { emulator, plugin in
            // kubelet's pods directory is a shared mount; a container's volume mount with
            // mountPropagation: HostToContainer is a slave of it in the container's own mount namespace.
            let pods = emulator.directory.appendingPathComponent("pods").path
            try FileManager.default.createDirectory(atPath: pods, withIntermediateDirectories: true)
            #expect(mount(pods, pods, nil, UInt(MS_BIND), nil) == 0)
            #expect(mount(nil, pods, nil, UInt(MS_SHARED | MS_REC), nil) == 0)

            try await emulator.putSecretProviderClass(
                namespace: "team-a", name: "app",
                parameters: Self.teamAParameters(objects: [["objectName": "db-password", "objectType": "secret"]]))
            let tokens = try await emulator.serviceAccountTokens(subject: CSISeed.teamASubject)
            let kept = try TestVolume(
                emulator, pod: "kept",
                attributes: ["secretProviderClass": "app", "csi.storage.k8s.io/serviceAccount.tokens": tokens])
            let gone = try TestVolume(
                emulator, pod: "gone",
                attributes: ["secretProviderClass": "app", "csi.storage.k8s.io/serviceAccount.tokens": tokens])
            for volume in [kept, gone] {
                try await plugin.client {
                    try await $0.publish(
                        volumeID: volume.id, targetPath: volume.targetPath, attributes: volume.attributes)
                }
            }
            let container = try Container(
                reading: kept.path("db-password"), podsDirectory: pods, in: emulator.directory)
            defer { container.stop() }
            #expect(try await container.waitToRead { $0 == "team-a-password" })

            plugin.process.signal(SIGKILL)
            _ = await plugin.process.exit()
            // Once the kernel's cached entries time out (1 s), every read fails.
            #expect(
                try await container.waitToRead { $0.contains("not connected") }, "the container sees the dead mount")
            await #expect(throws: (any Error).self) { try await kept.read("db-password") }

            let restarted = try await CSIPluginProcess(emulator: emulator, reuseStateOf: plugin)
            // Key Vault down during the first republish: still OK (kubelet must not tear the volume down), and the next one recovers.
            try await emulator.injectFault(["vault": "team-a-kv", "action": "status", "status": 503, "count": 100])
            try await restarted.client {
                try await $0.publish(volumeID: kept.id, targetPath: kept.targetPath, attributes: kept.attributes)
            }
            try await emulator.clearFaults()
            try await restarted.client {
                try await $0.publish(volumeID: kept.id, targetPath: kept.targetPath, attributes: kept.attributes)
            }
            #expect(try await kept.read("db-password") == "team-a-password")
            #expect(
                try await container.waitToRead { $0 == "team-a-password" }, "the remount reached the running container")

            try await restarted.client { try await $0.unpublish(volumeID: gone.id, targetPath: gone.targetPath) }
            #expect(!gone.isMounted && !FileManager.default.fileExists(atPath: gone.targetPath))
            try await restarted.client { try await $0.unpublish(volumeID: kept.id, targetPath: kept.targetPath) }
            #expect(await restarted.stop() == 0)
        }
    }

    /// A process in its own mount namespace whose pods directory is a slave of the host's, as a
    /// container's volume mount with mountPropagation: HostToContainer; it reads one file every 100 ms.
    struct Container {
        let process: ChildProcess
        let output: String

        init(reading file: String, podsDirectory: String, in directory: URL) throws {
            output = directory.appendingPathComponent("container-\(UUID().uuidString.prefix(8)).out").path
            let script = """
                mount --make-rslave '\(podsDirectory)' || exit 1
                while :; do cat '\(file)' > '\(output).tmp' 2>&1; mv '\(output).tmp' '\(output)'; sleep 0.1; done
                """
            process = try ChildProcess.spawn(
                "/usr/bin/unshare", ["--mount", "--propagation", "unchanged", "/bin/sh", "-c", script])
        }

        /// Waits up to 10 s for what the container reads to satisfy `condition`.
        func waitToRead(_ condition: (String) -> Bool) async throws -> Bool {
            for _ in 0..<100 {
                if let text = try? String(contentsOfFile: output, encoding: .utf8), condition(text) { return true }
                try await Task.sleep(for: .milliseconds(100))
            }
            return false
        }

        func stop() { process.signal(SIGKILL) }
    }

    @Test("akvfs csi publish and unpublish drive a running plugin from the command line")
    func commandLine() async throws {
        try await withCSIPlugin { emulator, plugin in
            let volume = try TestVolume(
                emulator, pod: "cli",
                attributes: [
                    "keyvaultName": "team-a-kv", "tenantId": Self.tenant,
                    "objects": objectsParameter([["objectName": "db-password", "objectType": "secret"]]),
                ])
            let attributesFile = emulator.directory.appendingPathComponent("attributes.json")
            try JSONSerialization.data(withJSONObject: volume.attributes).write(to: attributesFile)
            let secretsFile = emulator.directory.appendingPathComponent("secrets.json")
            try JSONSerialization.data(withJSONObject: [
                "clientid": CSISeed.servicePrincipal, "clientsecret": CSISeed.servicePrincipalSecret,
            ]).write(to: secretsFile)
            let akvfs = builtExecutable("akvfs")
            let endpoint = "unix://\(plugin.socketPath)"

            let published = try await ChildProcess.run(
                akvfs,
                [
                    "csi", "publish", "--endpoint", endpoint, "--target-path", volume.targetPath, "--volume-id",
                    volume.id, "--attributes", attributesFile.path, "--secrets", secretsFile.path,
                ])
            #expect(published.status == 0, "\(published.output)")
            #expect(try await volume.read("db-password") == "team-a-password")

            var wrong = volume.attributes
            wrong["keyvaultName"] = "x"
            let refused = try await ChildProcess.run(
                akvfs,
                [
                    "csi", "publish", "--endpoint", endpoint, "--target-path", volume.targetPath + "-x", "--attributes",
                    String(decoding: try JSONSerialization.data(withJSONObject: wrong), as: UTF8.self), "--secrets",
                    secretsFile.path,
                ])
            #expect(refused.status != 0)
            #expect(
                refused.output.contains("invalidArgument") && refused.output.contains("Invalid vault name"),
                "\(refused.output)")
            #expect(!refused.output.contains(CSISeed.servicePrincipalSecret))

            let unpublished = try await ChildProcess.run(
                akvfs,
                [
                    "csi", "unpublish", "--endpoint", endpoint, "--target-path", volume.targetPath, "--volume-id",
                    volume.id,
                ])
            #expect(unpublished.status == 0, "\(unpublished.output)")
            #expect(!volume.isMounted)
        }
    }
}
