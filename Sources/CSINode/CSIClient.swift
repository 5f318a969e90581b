import CSIProtocol
import GRPCCore
import GRPCNIOTransportHTTP2Posix

/// A CSI client of a running plugin, as kubelet is one: for `akvfs csi publish|unpublish` and tests.
public struct CSIClient: Sendable {
    public let node: Csi_V1_Node.Client<HTTP2ClientTransport.Posix>
    public let identity: Csi_V1_Identity.Client<HTTP2ClientTransport.Posix>

    /// Connects to the plugin's socket for the duration of `body`.
    public static func with<Result: Sendable>(
        socketPath: String, _ body: (CSIClient) async throws -> Result
    ) async throws -> Result {
        let transport = try HTTP2ClientTransport.Posix(
            target: .unixDomainSocket(path: socketPath), transportSecurity: .plaintext)
        return try await withGRPCClient(transport: transport) { client in
            try await body(
                CSIClient(
                    node: Csi_V1_Node.Client(wrapping: client), identity: Csi_V1_Identity.Client(wrapping: client)))
        }
    }

    /// NodePublishVolume with a mount capability, as kubelet sends for an inline volume.
    public func publish(
        volumeID: String, targetPath: String, attributes: [String: String], secrets: [String: String] = [:],
        readOnly: Bool = true, mountGroup: String? = nil
    ) async throws {
        var request = Csi_V1_NodePublishVolumeRequest()
        request.volumeID = volumeID
        request.targetPath = targetPath
        request.readonly = readOnly
        request.volumeContext = attributes
        request.secrets = secrets
        var mount = Csi_V1_VolumeCapability.MountVolume()
        if let mountGroup { mount.volumeMountGroup = mountGroup }
        request.volumeCapability.mount = mount
        request.volumeCapability.accessMode.mode = .singleNodeReaderOnly
        _ = try await node.nodePublishVolume(request)
    }

    public func unpublish(volumeID: String, targetPath: String) async throws {
        var request = Csi_V1_NodeUnpublishVolumeRequest()
        request.volumeID = volumeID
        request.targetPath = targetPath
        _ = try await node.nodeUnpublishVolume(request)
    }
}
