import CSINode
import EmulatorSupport
import Foundation
import GRPCCore
import HTTPTypes
import TestSupport
import Testing

extension EmulatorProcess {
    /// A call to the emulator's Kubernetes API as a cluster admin would make it (a token of its own).
    func kubernetes(_ method: HTTPRequest.Method, _ path: String, json: Any? = nil) async throws -> (
        status: Int, object: [String: Any]
    ) {
        let token = try await serviceAccountToken([
            "subject": "system:serviceaccount:kube-system:admin", "audience": "https://kubernetes.default.svc",
        ])
        let reply = try await sendJSON(
            method, "https://localhost:\(port)\(path)", token: BearerToken(value: token), json: json)
        return (reply.status, reply.json)
    }

    func secret(_ namespace: String, _ name: String) async throws -> [String: Any]? {
        let (status, object) = try await kubernetes(.get, "/api/v1/namespaces/\(namespace)/secrets/\(name)")
        return status == 200 ? object : nil
    }
}

/// `secretObjects`: Kubernetes Secrets filled from volumes as the Secrets Store CSI driver fills them.
@Suite("CSI node plugin: Kubernetes Secrets from secretObjects", .serialized, .timeLimit(.minutes(5)))
struct SecretSyncTests {
    static let objects = [
        ["objectName": "db-password", "objectType": "secret", "objectAlias": "password.txt"],
        ["objectName": "web", "objectType": "secret", "objectAlias": "web.pem"],
    ]
    static var secretObjects: [[String: Any]] {
        [
            [
                "secretName": "app-secrets", "type": "Opaque", "labels": ["app": "web"], "annotations": ["team": "a"],
                "data": [["objectName": "password.txt", "key": "password"]],
            ],
            [
                "secretName": "web-tls", "type": "kubernetes.io/tls",
                "data": [["objectName": "web.pem", "key": "tls.crt"], ["objectName": "web.pem", "key": "tls.key"]],
            ],
        ]
    }

    static func data(_ secret: [String: Any]?, _ key: String) -> String? {
        ((secret?["data"] as? [String: String])?[key]).flatMap { Data(base64Encoded: $0) }.map {
            String(decoding: $0, as: UTF8.self)
        }
    }

    static func metadata(_ secret: [String: Any]?) -> [String: Any] { secret?["metadata"] as? [String: Any] ?? [:] }

    static func ownerUIDs(_ secret: [String: Any]?) -> Set<String> {
        Set((metadata(secret)["ownerReferences"] as? [[String: Any]] ?? []).compactMap { $0["uid"] as? String })
    }

    /// The key as `openssl pkey -traditional` writes the first key of the file.
    static func traditionalKey(of file: String) throws -> String {
        let output = FileManager.default.temporaryDirectory.appendingPathComponent(
            "traditional-\(UUID().uuidString.prefix(8)).pem"
        ).path
        #expect(system("/usr/bin/openssl pkey -in '\(file)' -traditional -out '\(output)'") == 0)
        defer { unlink(output) }
        return try String(contentsOfFile: output, encoding: .utf8)
    }

    @Test(
        "Publishes fill the Secrets byte for byte, owned by their pods; rotation reaches them at republish; the last unpublish deletes them"
    )
    func lifecycle() async throws {
        try await withCSIPlugin { emulator, plugin in
            try await emulator.putSecretProviderClass(
                namespace: "team-a", name: "sync", parameters: CSIPluginTests.teamAParameters(objects: Self.objects),
                secretObjects: Self.secretObjects)
            let tokens = try await emulator.serviceAccountTokens(subject: CSISeed.teamASubject)
            let attributes = ["secretProviderClass": "sync", "csi.storage.k8s.io/serviceAccount.tokens": tokens]
            let first = try TestVolume(emulator, pod: "web-0", attributes: attributes)
            let second = try TestVolume(emulator, pod: "web-1", attributes: attributes)
            for volume in [first, second] {
                try await plugin.client {
                    try await $0.publish(
                        volumeID: volume.id, targetPath: volume.targetPath, attributes: volume.attributes)
                }
            }

            let opaque = try await emulator.secret("team-a", "app-secrets")
            #expect(opaque?["type"] as? String == "Opaque")
            #expect(Self.data(opaque, "password") == "team-a-password")
            #expect(
                Self.metadata(opaque)["labels"] as? [String: String] == [
                    "app": "web", "secrets-store.csi.k8s.io/managed": "true",
                ])
            #expect(
                Self.metadata(opaque)["annotations"] as? [String: String] == [
                    "team": "a", "csi.akvfs.io/synced-by": "akvfs",
                ])
            let podUIDs = Set([first, second].compactMap { $0.attributes["csi.storage.k8s.io/pod.uid"] })
            #expect(Self.ownerUIDs(opaque) == podUIDs, "every pod that mounts it owns it")
            #expect(
                (Self.metadata(opaque)["ownerReferences"] as? [[String: Any]])?.allSatisfy {
                    $0["kind"] as? String == "Pod"
                } == true)

            // kubernetes.io/tls: the certificates of the mounted file in order, and its key as PKCS#1/SEC1.
            let tls = try await emulator.secret("team-a", "web-tls")
            #expect(tls?["type"] as? String == "kubernetes.io/tls")
            let mounted = try await first.read("web.pem")
            let certificates = mounted.components(separatedBy: "-----BEGIN ").dropFirst().filter {
                $0.hasPrefix("CERTIFICATE-----")
            }.map { "-----BEGIN " + $0 }
            #expect(certificates.count == 3)
            #expect(Self.data(tls, "tls.crt") == certificates.joined())
            #expect(Self.data(tls, "tls.key") == (try Self.traditionalKey(of: first.path("web.pem"))))
            #expect(
                Self.data(tls, "tls.key")?.hasPrefix("-----BEGIN RSA PRIVATE KEY-----") == true
                    || Self.data(tls, "tls.key")?.hasPrefix("-----BEGIN EC PRIVATE KEY-----") == true)

            // A rotation reaches the Secret at kubelet's next republish once the file shows it.
            try await emulator.setSecret(vault: "team-a-kv", name: "db-password", value: "rotated-password")
            var rotated = false
            for _ in 0..<40 where !rotated {
                try await Task.sleep(for: .milliseconds(250))
                guard try await first.read("password.txt") == "rotated-password" else { continue }
                // A republish that meets the rotation filling the Secrets waits for it; it never fails.
                try await plugin.client {
                    try await $0.publish(volumeID: first.id, targetPath: first.targetPath, attributes: first.attributes)
                }
                rotated =
                    Self.data(try await emulator.secret("team-a", "app-secrets"), "password") == "rotated-password"
            }
            #expect(rotated, "the Secret holds the rotated value after a republish")
            #expect(
                !plugin.log.contains("rotated-password") && !plugin.log.contains("team-a-password"),
                "no value in the log")

            // The first pod goes: the Secret stays for the second; then the last one goes.
            try await plugin.client { try await $0.unpublish(volumeID: first.id, targetPath: first.targetPath) }
            let remaining = try await emulator.secret("team-a", "app-secrets")
            #expect(Self.ownerUIDs(remaining) == Set([second.attributes["csi.storage.k8s.io/pod.uid"]!]))
            #expect(Self.data(remaining, "password") == "rotated-password", "the release put the data back as it was")
            let remainingTLS = try await emulator.secret("team-a", "web-tls")
            #expect(Self.data(remainingTLS, "tls.crt") == Self.data(tls, "tls.crt"))
            #expect(Self.data(remainingTLS, "tls.key") == Self.data(tls, "tls.key"))
            try await plugin.client { try await $0.unpublish(volumeID: second.id, targetPath: second.targetPath) }
            #expect(try await emulator.secret("team-a", "app-secrets") == nil)
            #expect(try await emulator.secret("team-a", "web-tls") == nil)
        }
    }

    @Test(
        "A Secret akvfs did not create is never changed or deleted; bad entries fail the publish before anything is written"
    )
    func refusals() async throws {
        try await withCSIPlugin { emulator, plugin in
            let foreign: [String: Any] = [
                "apiVersion": "v1", "kind": "Secret", "metadata": ["name": "app-secrets", "namespace": "team-a"],
                "type": "Opaque", "data": ["password": Data("someone else's".utf8).base64EncodedString()],
            ]
            #expect(
                try await emulator.kubernetes(.post, "/api/v1/namespaces/team-a/secrets", json: foreign).status == 201)
            let before = try #require(try await emulator.secret("team-a", "app-secrets"))
            try await emulator.putSecretProviderClass(
                namespace: "team-a", name: "sync", parameters: CSIPluginTests.teamAParameters(objects: Self.objects),
                secretObjects: Self.secretObjects)
            var badEntries = Self.secretObjects
            badEntries[1]["data"] = [
                ["objectName": "not-mounted.pem", "key": "tls.crt"], ["objectName": "web.pem", "key": "tls.key"],
            ]
            try await emulator.putSecretProviderClass(
                namespace: "team-a", name: "bad", parameters: CSIPluginTests.teamAParameters(objects: Self.objects),
                secretObjects: badEntries)
            let tokens = try await emulator.serviceAccountTokens(subject: CSISeed.teamASubject)

            let bad = try TestVolume(
                emulator, pod: "bad-0",
                attributes: ["secretProviderClass": "bad", "csi.storage.k8s.io/serviceAccount.tokens": tokens])
            let refusal = await #expect(throws: RPCError.self) {
                try await plugin.client {
                    try await $0.publish(volumeID: bad.id, targetPath: bad.targetPath, attributes: bad.attributes)
                }
            }
            #expect(refusal?.code == .invalidArgument)
            #expect(
                refusal?.message.contains(
                    "secretObjects[1] of secretproviderclass team-a/bad: data key tls.crt names objectName \"not-mounted.pem\""
                ) == true, "\(refusal?.message ?? "")")
            #expect(try await emulator.secret("team-a", "web-tls") == nil, "nothing written")
            #expect(!bad.isMounted)

            let volume = try TestVolume(
                emulator, pod: "web-0",
                attributes: ["secretProviderClass": "sync", "csi.storage.k8s.io/serviceAccount.tokens": tokens])
            let taken = await #expect(throws: RPCError.self) {
                try await plugin.client {
                    try await $0.publish(
                        volumeID: volume.id, targetPath: volume.targetPath, attributes: volume.attributes)
                }
            }
            #expect(taken?.code == .failedPrecondition)
            #expect(
                taken?.message.contains("Secret team-a/app-secrets exists and akvfs did not create it") == true,
                "\(taken?.message ?? "")")
            #expect(!volume.isMounted)
            let after = try #require(try await emulator.secret("team-a", "app-secrets"))
            #expect(
                Self.metadata(after)["resourceVersion"] as? String == Self.metadata(before)["resourceVersion"]
                    as? String, "left alone")
            #expect(Self.data(after, "password") == "someone else's")
        }
    }

    /// Events recorded on a pod so far: (type, reason, message).
    static func events(_ emulator: EmulatorProcess, pod: String) async throws -> [(
        type: String, reason: String, message: String
    )] {
        let (_, list) = try await emulator.kubernetes(.get, "/api/v1/namespaces/team-a/events")
        return (list["items"] as? [[String: Any]] ?? []).filter {
            ($0["involvedObject"] as? [String: Any])?["name"] as? String == pod
        }.map {
            ($0["type"] as? String ?? "", $0["reason"] as? String ?? "", $0["message"] as? String ?? "")
        }
    }

    @Test(
        "Rotations applied and failed are events on the pod, with the driver's reasons; a rotation fills the Secret without waiting for a republish"
    )
    func rotationEvents() async throws {
        try await withCSIPlugin(arguments: ["--ttl", "2", "--metrics-address", "127.0.0.1:0"]) { emulator, plugin in
            try await emulator.putSecretProviderClass(
                namespace: "team-a", name: "sync",
                parameters: CSIPluginTests.teamAParameters(objects: [Self.objects[0]]),
                secretObjects: [Self.secretObjects[0]])
            let tokens = try await emulator.serviceAccountTokens(subject: CSISeed.teamASubject)
            let volume = try TestVolume(
                emulator, pod: "ev-0",
                attributes: ["secretProviderClass": "sync", "csi.storage.k8s.io/serviceAccount.tokens": tokens])
            try await plugin.client {
                try await $0.publish(volumeID: volume.id, targetPath: volume.targetPath, attributes: volume.attributes)
            }

            try await emulator.setSecret(vault: "team-a-kv", name: "db-password", value: "rotated-password")
            var events: [(type: String, reason: String, message: String)] = []
            for _ in 0..<60 {
                _ = try? await volume.read("password.txt")
                events = try await Self.events(emulator, pod: "ev-0")
                if events.contains(where: { $0.reason == "SecretRotationComplete" }) { break }
                try await Task.sleep(for: .milliseconds(250))
            }
            #expect(
                events.contains {
                    $0 == (
                        "Normal", "MountRotationComplete", "successfully rotated mounted contents for spc team-a/sync"
                    )
                }, "\(events)")
            #expect(
                events.contains {
                    $0 == ("Normal", "SecretRotationComplete", "successfully rotated K8s secret app-secrets")
                }, "\(events)")
            #expect(
                Self.data(try await emulator.secret("team-a", "app-secrets"), "password") == "rotated-password",
                "no republish needed")

            // Key Vault fails: one warning for the episode, naming the object and the reason, never the value.
            try await emulator.injectFault([
                "vault": "team-a-kv", "pathPrefix": "/secrets/db-password", "action": "status", "status": 503,
                "count": 1000,
            ])
            var warnings: [(type: String, reason: String, message: String)] = []
            for _ in 0..<60 where warnings.isEmpty {
                #expect(try await volume.read("password.txt") == "rotated-password", "the last good content is served")
                warnings = try await Self.events(emulator, pod: "ev-0").filter { $0.reason == "MountRotationFailed" }
                try await Task.sleep(for: .milliseconds(250))
            }
            let warning = try #require(warnings.first, "a MountRotationFailed event")
            #expect(warning.type == "Warning")
            #expect(
                warning.message.hasPrefix("failed to refresh secret db-password of spc team-a/sync:"),
                "\(warning.message)")
            #expect(!warning.message.contains("rotated-password") && !warning.message.contains("team-a-password"))
            try await Task.sleep(for: .seconds(3))
            #expect(
                try await Self.events(emulator, pod: "ev-0").filter { $0.reason == "MountRotationFailed" }.count == 1,
                "once per outage, not per retry")
            try await emulator.clearFaults()

            // The driver's metrics, under its names and labels.
            let bad = try TestVolume(
                emulator, pod: "bad-0",
                attributes: ["secretProviderClass": "absent", "csi.storage.k8s.io/serviceAccount.tokens": tokens])
            _ = try? await plugin.client {
                try await $0.publish(volumeID: bad.id, targetPath: bad.targetPath, attributes: bad.attributes)
            }
            let (status, body) = try await scrape(plugin.log)
            #expect(status == 200)
            #expect(sample(body, #"total_node_publish{os_type="linux",provider="azure"}"#) == 1, "\(body)")
            #expect(
                sample(body, #"total_node_publish_error{error_type="NotFound",os_type="linux",provider="azure"}"#) == 1)
            #expect(
                (sample(body, #"total_sync_k8s_secret{os_type="linux",provider="azure"}"#) ?? 0) >= 2,
                "at publish and at the rotation")
            #expect(body.contains(#"sync_k8s_secret_duration_sec_bucket{os_type="linux",le="0.1"}"#))
            #expect((sample(body, #"total_rotation_reconcile{os_type="linux",rotated="true"}"#) ?? 0) >= 1)
            #expect(
                (sample(
                    body,
                    #"total_rotation_reconcile_error{error_type="MountRotationFailed",os_type="linux",rotated="false"}"#
                ) ?? 0) >= 1)
            #expect(body.contains(#"akvfs_publish_duration_seconds_count{outcome="success"} 1"#))
            #expect(!body.contains("rotated-password") && !body.contains("team-a-password"))
        }
    }
}
