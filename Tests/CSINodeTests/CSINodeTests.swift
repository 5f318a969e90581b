import CSIProtocol
import FoundationEssentials
import GRPCCore
import PKI
import SecretProviderClass
import Testing

@testable import CSINode

@Suite("CSI request checks")
struct RequestValidationTests {
    static func request(_ change: (inout Csi_V1_NodePublishVolumeRequest) -> Void = { _ in })
        -> Csi_V1_NodePublishVolumeRequest
    {
        var request = Csi_V1_NodePublishVolumeRequest()
        request.volumeID = "csi-0123"
        request.targetPath = "/var/lib/kubelet/pods/uid/volumes/kubernetes.io~csi/secrets/mount"
        request.readonly = true
        request.volumeContext = ["secretProviderClass": "app"]
        request.volumeCapability.mount = .init()
        change(&request)
        return request
    }

    @Test("A well-formed request becomes a publication; the fsGroup is parsed")
    func valid() throws {
        let publication = try NodeService.validate(Self.request { $0.volumeCapability.mount.volumeMountGroup = "2000" })
        #expect(publication.volumeID == "csi-0123")
        #expect(publication.mountGroup == 2000)
        #expect(publication.readOnly)
    }

    @Test(
        "Each malformed request gets InvalidArgument with the driver's message",
        arguments: [
            ("Volume capability missing in request", request { $0.clearVolumeCapability() }),
            ("Volume ID missing in request", request { $0.volumeID = "" }),
            ("Target path missing in request", request { $0.targetPath = "" }),
            ("not an absolute, normalized path", request { $0.targetPath = "relative/mount" }),
            ("not an absolute, normalized path", request { $0.targetPath = "/var/lib/../../etc" }),
            ("not an absolute, normalized path", request { $0.targetPath = "/var//lib" }),
            ("not an absolute, normalized path", request { $0.targetPath = "/var/lib/" }),
            ("Volume attributes missing in request", request { $0.volumeContext = [:] }),
            ("Readonly is not true in request", request { $0.readonly = false }),
            ("block volumes are not supported", request { $0.volumeCapability.block = .init() }),
            ("not a numeric group ID", request { $0.volumeCapability.mount.volumeMountGroup = "-1" }),
        ])
    func invalid(message: String, request: Csi_V1_NodePublishVolumeRequest) {
        let error = #expect(throws: RPCError.self) { try NodeService.validate(request) }
        #expect(error?.code == .invalidArgument)
        #expect(error?.message.contains(message) == true, "\(error?.message ?? "")")
    }

    @Test("A republish compares everything but the rotating service-account token")
    func comparison() throws {
        let first = try NodeService.validate(
            Self.request { $0.volumeContext[SecretProviderClassParser.serviceAccountTokensKey] = "one" })
        let second = try NodeService.validate(
            Self.request { $0.volumeContext[SecretProviderClassParser.serviceAccountTokensKey] = "two" })
        let other = try NodeService.validate(Self.request { $0.volumeContext["uid"] = "1000" })
        #expect(first.identityForComparison == second.identityForComparison)
        #expect(first.identityForComparison != other.identityForComparison)
    }

    @Test("Volume errors keep their gRPC code")
    func codes() {
        let pairs: [(VolumeError.Code, RPCError.Code)] = [
            (.invalidArgument, .invalidArgument), (.notFound, .notFound), (.alreadyExists, .alreadyExists),
            (.permissionDenied, .permissionDenied), (.failedPrecondition, .failedPrecondition), (.aborted, .aborted),
            (.deadlineExceeded, .deadlineExceeded), (.unavailable, .unavailable), (.unauthenticated, .unauthenticated),
            (.internalError, .internalError),
        ]
        for (volume, rpc) in pairs {
            #expect(RPCError(VolumeError(volume, "m")).code == rpc)
            #expect(Int(volume.grpcStatus) == rpc.rawValue)
        }
    }

    @Test("Endpoints are unix sockets with absolute paths short enough for sockaddr_un")
    func endpoints() {
        #expect(CSIEndpoint.socketPath("unix:///csi/csi.sock") == "/csi/csi.sock")
        #expect(CSIEndpoint.socketPath("/csi/csi.sock") == "/csi/csi.sock")
        #expect(CSIEndpoint.socketPath("unix://csi.sock") == nil)
        #expect(CSIEndpoint.socketPath("unix:///" + String(repeating: "a", count: 120)) == nil)
    }

    @Test("View directories are fixed-length hex whatever the volume ID holds")
    func viewIDs() {
        let id = VolumeManager.viewID("csi-../../etc/ünïcode")
        #expect(id.count == 34 && id.hasPrefix("v-") && id.dropFirst(2).allSatisfy(\.isHexDigit))
        #expect(VolumeManager.viewID("a") != VolumeManager.viewID("b"))
    }
}

@Suite("SecretProviderClass objects from the Kubernetes API")
struct SecretProviderClassReaderTests {
    static func object(_ spec: String) -> [UInt8] {
        Array(
            #"{"apiVersion":"secrets-store.csi.x-k8s.io/v1","kind":"SecretProviderClass","metadata":{"name":"app"},"spec":\#(spec)}"#
                .utf8)
    }

    @Test(
        "provider, parameters and secretObjects are read; data entries' names and keys are trimmed, as the driver does")
    func decode() throws {
        let spec = #"""
            {"provider":"azure","parameters":{"keyvaultName":"kv1"},"secretObjects":[
              {"secretName":"s","type":"Opaque","labels":{"app":"web"},"annotations":{"a":"b"},
               "data":[{"objectName":" db-password ","key":"password\t"}]},
              {"secretName":"t"}]}
            """#
        let decoded = try SecretProviderClassReader.decode(Self.object(spec), namespace: "team-a", name: "app")
        #expect(decoded.provider == "azure")
        #expect(decoded.parameters == ["keyvaultName": "kv1"])
        #expect(
            decoded.secretObjects == [
                SecretObject(
                    secretName: "s", type: "Opaque", labels: ["app": "web"], annotations: ["a": "b"],
                    data: [.init(objectName: "db-password", key: "password")]),
                SecretObject(secretName: "t", type: "", data: []),
            ])
        #expect(throws: VolumeError.self) {
            try SecretProviderClassReader.decode(
                Self.object(#"{"provider":"azure","parameters":{"a":"b"},"secretObjects":[{"secretName":1}]}"#),
                namespace: "team-a", name: "app")
        }
    }

    @Test(
        "Objects akvfs cannot use are refused with what to change",
        arguments: [
            (#"{"provider":"vault","parameters":{"a":"b"}}"#, "is for provider vault"),
            (#"{"parameters":{"a":"b"}}"#, "provider not set in team-a/app"),
            (#"{"provider":"azure"}"#, "parameters not set in team-a/app"),
            (#"{"provider":"azure","parameters":{"a":1}}"#, "spec.parameters must map names to strings"),
        ])
    func refused(spec: String, message: String) {
        let error = #expect(throws: VolumeError.self) {
            try SecretProviderClassReader.decode(Self.object(spec), namespace: "team-a", name: "app")
        }
        #expect(error?.code == .invalidArgument)
        #expect(error?.message.contains(message) == true, "\(error?.message ?? "")")
    }

    @Test("Only DNS-1123 names reach the URL path")
    func names() {
        #expect(SecretProviderClassReader.isObjectName("team-a"))
        #expect(SecretProviderClassReader.isObjectName("app.v2"))
        for bad in ["", "Team", "a/b", "..", "-a", "a b", "a%2f", String(repeating: "a", count: 254)] {
            #expect(!SecretProviderClassReader.isObjectName(bad), "\(bad)")
        }
    }

    @Test("In a cluster the API is found from the service environment")
    func inCluster() {
        #expect(KubernetesAPIConfiguration.inCluster(environment: [:]) == nil)
        let ipv4 = KubernetesAPIConfiguration.inCluster(environment: [
            "KUBERNETES_SERVICE_HOST": "10.0.0.1", "KUBERNETES_SERVICE_PORT": "443",
        ])
        #expect(ipv4?.url == "https://10.0.0.1:443")
        #expect(ipv4?.tokenFile == "/var/run/secrets/kubernetes.io/serviceaccount/token")
        let ipv6 = KubernetesAPIConfiguration.inCluster(environment: [
            "KUBERNETES_SERVICE_HOST": "fd00::1", "KUBERNETES_SERVICE_PORT": "443",
        ])
        #expect(ipv6?.url == "https://[fd00::1]:443")
    }
}

@Suite("Workload identity tokens")
struct ServiceAccountTokenBoxTests {
    static func token(_ name: String, expires: TimeInterval) -> VerifiedServiceAccountToken {
        VerifiedServiceAccountToken(
            value: name, subject: "system:serviceaccount:ns:sa", expiresAt: Date(timeIntervalSince1970: expires),
            proof: .clusterKeys)
    }

    @Test("A later-expiring verified token wins, whatever order publishes arrive in")
    func newest() {
        let box = ServiceAccountTokenBox()
        box.offer(Self.token("newer", expires: 2_000_003_600))
        box.offer(Self.token("older", expires: 2_000_000_000))
        #expect(box.current == "newer")
        box.offer(Self.token("newest", expires: 2_000_007_200))
        #expect(box.current == "newest")
    }
}
