import CSIProtocol
import GRPCCore
import SwiftProtobuf

/// CSI Identity: who the plugin is and whether it is ready.
struct IdentityService: Csi_V1_Identity.SimpleServiceProtocol {
    let driverName: String
    let version: String
    /// True once the shared FUSE mount serves.
    let isReady: @Sendable () -> Bool

    func getPluginInfo(request: Csi_V1_GetPluginInfoRequest, context: ServerContext) async throws
        -> Csi_V1_GetPluginInfoResponse
    {
        var response = Csi_V1_GetPluginInfoResponse()
        response.name = driverName
        response.vendorVersion = version
        return response
    }

    /// No controller service: volumes are ephemeral and node-local.
    func getPluginCapabilities(
        request: Csi_V1_GetPluginCapabilitiesRequest, context: ServerContext
    ) async throws -> Csi_V1_GetPluginCapabilitiesResponse {
        Csi_V1_GetPluginCapabilitiesResponse()
    }

    func probe(request: Csi_V1_ProbeRequest, context: ServerContext) async throws -> Csi_V1_ProbeResponse {
        var response = Csi_V1_ProbeResponse()
        response.ready = Google_Protobuf_BoolValue(isReady())
        return response
    }
}
