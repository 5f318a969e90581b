import CSINode
import FoundationEssentials
import SecretProviderClass
import TestSupport
import Testing
import Yams

/// deploy/kubernetes must agree with the plugin: one driver name everywhere, the token audience
/// workload identity needs, the socket path kubelet registers, and an example class that akvfs's
/// strict parser accepts.
@Suite("Kubernetes manifests")
struct ManifestTests {
    static let directory = repositoryFile("deploy/kubernetes")

    static func documents(_ file: String) throws -> [[String: Any]] {
        let text = try String(contentsOf: directory.appendingPathComponent(file), encoding: .utf8)
        return try Yams.load_all(yaml: text).compactMap { $0 as? [String: Any] }
    }

    static func document(_ file: String, kind: String) throws -> [String: Any] {
        try #require(try documents(file).first { $0["kind"] as? String == kind }, "\(file) has no \(kind)")
    }

    @Test("The CSIDriver asks for what the plugin needs")
    func driver() throws {
        let driver = try Self.document("csidriver.yaml", kind: "CSIDriver")
        #expect((driver["metadata"] as? [String: Any])?["name"] as? String == NodePluginConfiguration.defaultDriverName)
        let spec = try #require(driver["spec"] as? [String: Any])
        #expect(spec["podInfoOnMount"] as? Bool == true)
        #expect(spec["attachRequired"] as? Bool == false)
        #expect(spec["requiresRepublish"] as? Bool == true)
        #expect(spec["volumeLifecycleModes"] as? [String] == ["Ephemeral"])
        #expect(spec["fsGroupPolicy"] as? String == "File")
        let audiences = (spec["tokenRequests"] as? [[String: Any]])?.compactMap { $0["audience"] as? String }
        #expect(audiences == [SecretProviderClassParser.workloadIdentityAudience])
    }

    static func daemonSet(_ name: String) throws -> [String: Any] {
        try #require(
            try documents("daemonset.yaml").first { ($0["metadata"] as? [String: Any])?["name"] as? String == name },
            "daemonset.yaml has no DaemonSet \(name)")
    }

    static func podSpec(_ daemonSet: [String: Any]) throws -> [String: Any] {
        try #require(((daemonSet["spec"] as? [String: Any])?["template"] as? [String: Any])?["spec"] as? [String: Any])
    }

    static func container(_ pod: [String: Any], _ name: String) throws -> [String: Any] {
        try #require(
            (pod["containers"] as? [[String: Any]])?.first { $0["name"] as? String == name }, "no container \(name)")
    }

    /// The host path a container sees at `mountPath`, and the propagation it asks for.
    static func hostPath(_ pod: [String: Any], _ container: [String: Any], at mountPath: String) throws -> (
        path: String, propagation: String?
    ) {
        let mount = try #require(
            (container["volumeMounts"] as? [[String: Any]])?.first { $0["mountPath"] as? String == mountPath },
            "nothing at \(mountPath)")
        let volume = try #require(
            (pod["volumes"] as? [[String: Any]])?.first { $0["name"] as? String == mount["name"] as? String })
        let path = try #require(
            (volume["hostPath"] as? [String: Any])?["path"] as? String, "\(mountPath) is no hostPath")
        return (path, mount["mountPropagation"] as? String)
    }

    @Test(
        "The plugin DaemonSet rolls with a surge, takes over through host directories, and is ready only when it serves"
    )
    func pluginDaemonSet() throws {
        let daemonSet = try Self.daemonSet("akvfs-csi")
        let strategy = try #require((daemonSet["spec"] as? [String: Any])?["updateStrategy"] as? [String: Any])
        #expect(strategy["type"] as? String == "RollingUpdate")
        let rolling = try #require(strategy["rollingUpdate"] as? [String: Any])
        #expect(rolling["maxSurge"] as? Int == 1)
        #expect(rolling["maxUnavailable"] as? Int == 0)

        let pod = try Self.podSpec(daemonSet)
        #expect(pod["serviceAccountName"] as? String == "akvfs-csi")
        let plugin = try Self.container(pod, "akvfs")
        let environment = (plugin["env"] as? [[String: Any]] ?? []).reduce(into: [String: String]()) {
            $0[$1["name"] as? String ?? ""] = $1["value"] as? String
        }
        #expect(environment["AKVFS_ALLOW_NODE_IDENTITY"] == "false", "the one switch for node identity, off")
        let arguments = try #require(plugin["args"] as? [String])
        func value(_ option: String) -> String? {
            arguments.first { $0.hasPrefix("--\(option)=") }.map { String($0.dropFirst(option.count + 3)) }
        }
        #expect(arguments.first == "csi")
        #expect(value("endpoint") == "unix:///csi/csi.sock")
        #expect((plugin["securityContext"] as? [String: Any])?["privileged"] as? Bool == true)
        #expect(
            try Self.hostPath(pod, plugin, at: "/var/lib/kubelet/pods") == ("/var/lib/kubelet/pods", "Bidirectional"))
        // The shared mount and the handoff socket: on the host, so the next plugin pod finds both.
        let stateDirectory = try #require(value("state-dir"))
        #expect(try Self.hostPath(pod, plugin, at: stateDirectory).propagation == "Bidirectional")
        #expect(
            try Self.hostPath(pod, plugin, at: "/csi").path
                == "/var/lib/kubelet/plugins/\(NodePluginConfiguration.defaultDriverName)")

        // Ready only while this process serves CSI; the file lives in a volume of this pod alone.
        let readyFile = try #require(value("ready-file"))
        let probe = try #require(
            ((plugin["readinessProbe"] as? [String: Any])?["exec"] as? [String: Any])?["command"] as? [String])
        // The image has no shell or coreutils: the probe is akvfs-csi's own check.
        #expect(probe == ["/usr/local/bin/akvfs-csi", "ready", "--ready-file=\(readyFile)"])
        let readyMount = try #require(
            (plugin["volumeMounts"] as? [[String: Any]])?.first {
                readyFile.hasPrefix(($0["mountPath"] as? String ?? "") + "/")
            })
        let readyVolume = (pod["volumes"] as? [[String: Any]])?.first {
            $0["name"] as? String == readyMount["name"] as? String
        }
        #expect(readyVolume?["emptyDir"] != nil)

        // The registrar deletes its socket when it stops: two overlapping plugin pods must not carry one.
        #expect(
            (pod["containers"] as? [[String: Any]])?.contains { $0["name"] as? String == "node-driver-registrar" }
                == false)

        // The keeper the plugin names is the one the node DaemonSet runs, through the same host directory.
        let keeperSocket = try #require(value("keeper"))
        let nodePod = try Self.podSpec(try Self.daemonSet("akvfs-csi-node"))
        let keeper = try Self.container(nodePod, "keeper")
        #expect((keeper["command"] as? [String])?.contains("--socket=\(keeperSocket)") == true)
        let keeperDirectory = String(keeperSocket[..<(keeperSocket.lastIndex(of: "/") ?? keeperSocket.startIndex)])
        #expect(
            try Self.hostPath(pod, plugin, at: keeperDirectory).path
                == (try Self.hostPath(nodePod, keeper, at: keeperDirectory).path))
        #expect(keeperSocket.utf8.count < 108, "fits sockaddr_un")
    }

    @Test("The node DaemonSet registers the plugin's socket with kubelet")
    func nodeDaemonSet() throws {
        let pod = try Self.podSpec(try Self.daemonSet("akvfs-csi-node"))
        let registrar = try Self.container(pod, "node-driver-registrar")
        let arguments = try #require(registrar["args"] as? [String])
        #expect(arguments.contains("--csi-address=/csi/csi.sock"))
        #expect(
            arguments.contains(
                "--kubelet-registration-path=/var/lib/kubelet/plugins/\(NodePluginConfiguration.defaultDriverName)/csi.sock"
            ))
        #expect(
            try Self.hostPath(pod, registrar, at: "/csi").path
                == "/var/lib/kubelet/plugins/\(NodePluginConfiguration.defaultDriverName)")
    }

    @Test(
        "RBAC lets the plugin get SecretProviderClasses and the service-account issuer's keys, keep Secrets, and nothing else"
    )
    func rbac() throws {
        let role = try Self.document("rbac.yaml", kind: "ClusterRole")
        let rules = try #require(role["rules"] as? [[String: Any]])
        #expect(rules.count == 3)
        #expect(rules.first?["resources"] as? [String] == ["secretproviderclasses"])
        #expect(rules.first?["verbs"] as? [String] == ["get"])
        // secretObjects: no list or watch, which would read every Secret in the cluster at once.
        #expect(rules.dropFirst().first?["apiGroups"] as? [String] == [""])
        #expect(rules.dropFirst().first?["resources"] as? [String] == ["secrets"])
        #expect(rules.dropFirst().first?["verbs"] as? [String] == ["get", "create", "update", "delete"])
        #expect(rules.last?["resources"] as? [String] == ["events"])
        #expect(rules.last?["verbs"] as? [String] == ["create"])

        let account = try Self.document("rbac.yaml", kind: "ServiceAccount")
        let metadata = try #require(account["metadata"] as? [String: Any])
        let plugin = [
            "kind": "ServiceAccount", "name": metadata["name"] as? String,
            "namespace": metadata["namespace"] as? String,
        ]
        let bindings = try Self.documents("rbac.yaml").filter { $0["kind"] as? String == "ClusterRoleBinding" }
        var bound: [String] = []
        for binding in bindings {
            let subjects = try #require(binding["subjects"] as? [[String: Any]])
            #expect(subjects.map { $0.mapValues { $0 as? String } } == [plugin], "each binding is for the plugin alone")
            bound.append(try #require((binding["roleRef"] as? [String: Any])?["name"] as? String))
        }
        // The built-in discovery role, bound explicitly: a cluster may have removed its default binding.
        #expect(bound.sorted() == ["akvfs-csi", "system:service-account-issuer-discovery"])
        #expect(
            try Self.documents("rbac.yaml").filter { $0["kind"] as? String == "ClusterRole" }.count == 1,
            "no role of its own beyond akvfs-csi")
    }

    @Test("The example SecretProviderClass and pod pass akvfs's own checks")
    func example() throws {
        let spc = try Self.document("example.yaml", kind: "SecretProviderClass")
        let spec = try #require(spc["spec"] as? [String: Any])
        #expect(SecretProviderClassReader.providers.contains(spec["provider"] as? String ?? ""))
        var parameters = try #require(spec["parameters"] as? [String: String])
        // Fill the placeholders as a user would.
        parameters["clientID"] = "00000000-0000-0000-0000-000000000001"
        parameters["keyvaultName"] = "contoso-kv"
        parameters["tenantId"] = "00000000-0000-0000-0000-000000000002"
        let pod = try Self.document("example.yaml", kind: "Pod")
        let volume = try #require(
            ((pod["spec"] as? [String: Any])?["volumes"] as? [[String: Any]])?.first?["csi"] as? [String: Any])
        #expect(volume["driver"] as? String == NodePluginConfiguration.defaultDriverName)
        #expect(volume["readOnly"] as? Bool == true)
        let attributes = try #require(volume["volumeAttributes"] as? [String: String])
        let tokens =
            #"{"api://AzureADTokenExchange":{"token":"eyJ.e30.c2ln","expirationTimestamp":"2030-01-01T00:00:00Z"}}"#
        let kubelet = [
            "csi.storage.k8s.io/pod.name": "busybox", "csi.storage.k8s.io/pod.namespace": "default",
            "csi.storage.k8s.io/serviceAccount.tokens": tokens,
        ]
        let request = try SecretProviderClassParser.parse(
            parameters: parameters, podAttributes: attributes.merging(kubelet) { $1 }, secrets: [:],
            options: ParserOptions())
        #expect(request.objects.map { $0.path.joined(separator: "/") } == ["secret1", "key1", "tls/cert1.pem"])
        #expect(request.objects.last?.permission == 0o640)
    }
}
