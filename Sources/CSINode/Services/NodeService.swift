import CSIProtocol
import GRPCCore
import HTTPTransport
import Logging
import SecretProviderClass

/// CSI Node: publish and unpublish volumes. Requests are checked here (the messages are
/// kubelet's and the driver's, so they can be searched for) and carried out by `VolumeManager`.
struct NodeService: Csi_V1_Node.SimpleServiceProtocol {
    let nodeID: String
    let volumes: VolumeManager
    /// Bytes of volume attributes and secrets a publish may carry.
    let maxRequestBytes: Int

    func nodePublishVolume(
        request: Csi_V1_NodePublishVolumeRequest, context: ServerContext
    ) async throws -> Csi_V1_NodePublishVolumeResponse {
        let started = ContinuousClock.now
        do throws(RPCError) {
            try Self.checkSize(request, limit: maxRequestBytes)
            let publication = try Self.validate(request)
            do {
                try await volumes.publish(publication, secrets: request.secrets)
            } catch {
                throw RPCError(error)
            }
        } catch {
            CSIMetrics.publishFailed(error.code, after: ContinuousClock.now - started)
            throw error
        }
        CSIMetrics.published(after: ContinuousClock.now - started)
        return Csi_V1_NodePublishVolumeResponse()
    }

    func nodeUnpublishVolume(
        request: Csi_V1_NodeUnpublishVolumeRequest, context: ServerContext
    ) async throws -> Csi_V1_NodeUnpublishVolumeResponse {
        guard !request.volumeID.isEmpty else {
            throw RPCError(code: .invalidArgument, message: "Volume ID missing in request")
        }
        guard !request.targetPath.isEmpty else {
            throw RPCError(code: .invalidArgument, message: "Target path missing in request")
        }
        try Self.checkPath(request.targetPath)
        do {
            try await volumes.unpublish(volumeID: request.volumeID, targetPath: request.targetPath)
        } catch {
            CSIMetrics.unpublishFailed()
            throw RPCError(error)
        }
        CSIMetrics.unpublished()
        return Csi_V1_NodeUnpublishVolumeResponse()
    }

    func nodeGetInfo(request: Csi_V1_NodeGetInfoRequest, context: ServerContext) async throws
        -> Csi_V1_NodeGetInfoResponse
    {
        var response = Csi_V1_NodeGetInfoResponse()
        response.nodeID = nodeID
        return response
    }

    /// VOLUME_MOUNT_GROUP: kubelet then hands over the pod's fsGroup instead of trying to chown a
    /// read-only volume itself, and the files get that group.
    func nodeGetCapabilities(
        request: Csi_V1_NodeGetCapabilitiesRequest, context: ServerContext
    ) async throws -> Csi_V1_NodeGetCapabilitiesResponse {
        var capability = Csi_V1_NodeServiceCapability()
        capability.rpc.type = .volumeMountGroup
        var response = Csi_V1_NodeGetCapabilitiesResponse()
        response.capabilities = [capability]
        return response
    }

    func nodeStageVolume(request: Csi_V1_NodeStageVolumeRequest, context: ServerContext) async throws
        -> Csi_V1_NodeStageVolumeResponse
    {
        throw RPCError(
            code: .unimplemented,
            message: "NodeStageVolume is not supported: akvfs volumes are published directly (no STAGE_UNSTAGE_VOLUME)")
    }

    func nodeUnstageVolume(
        request: Csi_V1_NodeUnstageVolumeRequest, context: ServerContext
    ) async throws -> Csi_V1_NodeUnstageVolumeResponse {
        throw RPCError(
            code: .unimplemented,
            message:
                "NodeUnstageVolume is not supported: akvfs volumes are published directly (no STAGE_UNSTAGE_VOLUME)")
    }

    func nodeGetVolumeStats(
        request: Csi_V1_NodeGetVolumeStatsRequest, context: ServerContext
    ) async throws -> Csi_V1_NodeGetVolumeStatsResponse {
        throw RPCError(
            code: .unimplemented, message: "NodeGetVolumeStats is not supported (no GET_VOLUME_STATS capability)")
    }

    func nodeExpandVolume(
        request: Csi_V1_NodeExpandVolumeRequest, context: ServerContext
    ) async throws -> Csi_V1_NodeExpandVolumeResponse {
        throw RPCError(
            code: .unimplemented, message: "NodeExpandVolume is not supported: akvfs volumes are read-only views")
    }

    // MARK: Validation

    /// Before anything else is looked at: the attributes and secrets are the part of a request
    /// that may be large (a SecretProviderClass's parameters given inline, tokens).
    static func checkSize(_ request: Csi_V1_NodePublishVolumeRequest, limit: Int) throws(RPCError) {
        let bytes = [request.volumeContext, request.secrets].reduce(0) { total, map in
            map.reduce(total) { $0 + $1.key.utf8.count + $1.value.utf8.count }
        }
        guard bytes <= limit else {
            throw RPCError(
                code: .invalidArgument,
                message:
                    "the request carries \(bytes) bytes of volume attributes and secrets; the plugin takes at most \(limit) "
                    + "(--max-request-bytes)")
        }
    }

    static func validate(_ request: Csi_V1_NodePublishVolumeRequest) throws(RPCError) -> Publication {
        guard request.hasVolumeCapability else {
            throw RPCError(code: .invalidArgument, message: "Volume capability missing in request")
        }
        guard !request.volumeID.isEmpty else {
            throw RPCError(code: .invalidArgument, message: "Volume ID missing in request")
        }
        guard !request.targetPath.isEmpty else {
            throw RPCError(code: .invalidArgument, message: "Target path missing in request")
        }
        try checkPath(request.targetPath)
        guard !request.volumeContext.isEmpty else {
            throw RPCError(code: .invalidArgument, message: "Volume attributes missing in request")
        }
        guard request.readonly else {
            throw RPCError(
                code: .invalidArgument,
                message:
                    "Readonly is not true in request: set readOnly: true in the pod's csi volume; akvfs volumes are read-only"
            )
        }
        let mount: Csi_V1_VolumeCapability.MountVolume
        switch request.volumeCapability.accessType {
        case .mount(let value): mount = value
        case .block:
            throw RPCError(
                code: .invalidArgument,
                message: "block volumes are not supported: akvfs volumes are filesystems (volumeMode: Filesystem)")
        case nil:
            throw RPCError(
                code: .invalidArgument,
                message: "Volume capability has no access type: akvfs volumes need the mount access type")
        }
        var mountGroup: UInt32?
        if !mount.volumeMountGroup.isEmpty {
            guard let group = UInt32(mount.volumeMountGroup), group < UInt32.max else {
                throw RPCError(
                    code: .invalidArgument,
                    message:
                        "volume_mount_group \(mount.volumeMountGroup) is not a numeric group ID (the pod's fsGroup)")
            }
            mountGroup = group
        }
        return Publication(
            volumeID: request.volumeID, targetPath: request.targetPath, readOnly: request.readonly,
            mountGroup: mountGroup,
            volumeContext: request.volumeContext)
    }

    /// Kubelet's target paths are absolute and clean; anything else is refused before it reaches mount(2).
    static func checkPath(_ path: String) throws(RPCError) {
        let components = path.split(separator: "/", omittingEmptySubsequences: false)
        guard path.hasPrefix("/"), path.utf8.count < 4096, !path.contains("\0"),
            !components.dropFirst().contains(where: { $0.isEmpty || $0 == "." || $0 == ".." }) || path == "/"
        else {
            throw RPCError(code: .invalidArgument, message: "Target path \(path) is not an absolute, normalized path")
        }
    }
}

extension RPCError {
    init(_ error: VolumeError) {
        let code: RPCError.Code =
            switch error.code {
            case .invalidArgument: .invalidArgument
            case .failedPrecondition: .failedPrecondition
            case .unauthenticated: .unauthenticated
            case .notFound: .notFound
            case .alreadyExists: .alreadyExists
            case .permissionDenied: .permissionDenied
            case .aborted: .aborted
            case .resourceExhausted: .resourceExhausted
            case .deadlineExceeded: .deadlineExceeded
            case .unavailable: .unavailable
            case .internalError: .internalError
            }
        // Kubelet logs the message and shows it in the pod's events; it may quote what the request or a
        // server carried.
        self.init(code: code, message: OutsideText.escaped(error.message))
    }
}
