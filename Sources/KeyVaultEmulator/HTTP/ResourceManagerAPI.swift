import FoundationEssentials
import HTTPTypes
import Hummingbird

/// The little of Azure Resource Manager the Azure CLI needs to use the emulator as a cloud, on
/// `https://localhost:<port>/`: the cloud's endpoints document (`az cloud register
/// --endpoint-resource-manager`), and the subscription and tenant lists `az login` reads. There is
/// one emulated subscription, and every principal with a token for ARM sees it. Nothing else of
/// ARM is served: vaults are made by the seed or the admin API.
struct ResourceManagerAPI: Sendable {
    /// ARM's token audience in the public cloud; the endpoints document names it, so clients that
    /// hard-code it work too.
    static let audience = "https://management.core.windows.net/"
    static let subscriptionId = "5ab5c3e0-a4f5-4000-8000-00000000e001"
    static let subscriptionName = "akvfs emulator"
    /// What `az cloud register` sends; older versions answer a different document.
    static let endpointsAPIVersion = "2022-09-01"

    let state: EmulatorState

    /// Whether `path` is one of ARM's, so faults and the log can say so. `az cloud register`
    /// asks for `//metadata/endpoints` when the endpoint it is given ends in a slash.
    static func serves(_ path: String) -> Bool {
        ["/metadata/endpoints", "//metadata/endpoints", "/subscriptions", "/tenants"].contains(path)
    }

    /// Returns nil when the path is not one of ARM's.
    func handle(_ request: IncomingRequest) -> Response? {
        guard Self.serves(request.path) else { return nil }
        guard request.method == "GET" else {
            return Self.failure(405, "MethodNotAllowed", "The emulator serves only GET on \(request.path).")
        }
        guard let apiVersion = request.query["api-version"], !apiVersion.isEmpty else {
            return Self.failure(
                400, "MissingApiVersionParameter",
                "The api-version query parameter (?api-version=) is required for all requests.")
        }
        if request.path.hasSuffix("/metadata/endpoints") {
            guard apiVersion == Self.endpointsAPIVersion else {
                return Self.failure(
                    400, "InvalidApiVersionParameter",
                    "The api-version '\(apiVersion)' is invalid. The emulator serves the endpoints document for api-version \(Self.endpointsAPIVersion)."
                )
            }
            return .json(endpoints(origin: "https://\(request.authority)", portSuffix: request.portSuffix))
        }
        guard Self.isDateVersion(apiVersion) else {
            return Self.failure(
                400, "InvalidApiVersionParameter",
                "The api-version '\(apiVersion)' is invalid. The supported versions are dates such as 2022-12-01.")
        }
        if let failure = unauthenticated(request) { return failure }
        if request.path == "/tenants" {
            return .json(TenantList(value: [.init(id: "/tenants/\(state.tenantId)", tenantId: state.tenantId)]))
        }
        let subscription = Subscription(
            id: "/subscriptions/\(Self.subscriptionId)", subscriptionId: Self.subscriptionId, tenantId: state.tenantId,
            displayName: Self.subscriptionName)
        return .json(SubscriptionList(value: [subscription], count: .init(value: 1)))
    }

    /// A bearer token this emulator issued for ARM; Key Vault's tokens are refused as ARM refuses them.
    private func unauthenticated(_ request: IncomingRequest) -> Response? {
        let challenge =
            "Bearer authorization_uri=\"https://\(request.authority)/\(state.tenantId)\", error=\"invalid_token\""
        guard let header = request.headers[.authorization], header.lowercased().hasPrefix("bearer ") else {
            return Self.failure(
                401, "AuthenticationFailed", "Authentication failed. The 'Authorization' header is missing.",
                challenge: challenge)
        }
        do {
            let claims = try state.tokens.validateAccessToken(
                String(header.dropFirst(7)).trimmedWhitespace, resource: Self.audience)
            guard claims.aud != TokenService.keyVaultApplicationId else {
                return Self.failure(
                    401, "InvalidAuthenticationTokenAudience",
                    "The access token has been obtained for wrong audience or resource '\(claims.aud)'.",
                    challenge: challenge)
            }
            return nil
        } catch {
            return Self.failure(
                401, "InvalidAuthenticationToken", "The access token is invalid: \(error.message)", challenge: challenge
            )
        }
    }

    private static func isDateVersion(_ version: String) -> Bool {
        let date = version.hasSuffix("-preview") ? String(version.dropLast("-preview".count)) : version
        let parts = date.split(separator: "-", omittingEmptySubsequences: false)
        return parts.count == 3
            && zip(parts, [4, 2, 2]).allSatisfy { part, length in
                part.count == length && part.allSatisfy(\.isASCIIDigit)
            }
    }

    static func failure(_ status: Int, _ code: String, _ message: String, challenge: String? = nil) -> Response {
        struct Body: Encodable {
            struct Detail: Encodable {
                var code: String
                var message: String
            }
            var error: Detail
        }
        var headers = HTTPFields()
        if let challenge { headers[.wwwAuthenticate] = challenge }
        return .json(Body(error: .init(code: code, message: message)), status: status, headers: headers)
    }

    // MARK: Documents

    /// The cloud as `az cloud register` reads it: where to log in, the token audience for ARM, and
    /// the Key Vault DNS suffix, which carries the emulator's port.
    private func endpoints(origin: String, portSuffix: String) -> Endpoints {
        return Endpoints(
            name: "AkvfsEmulator",
            resourceManager: "\(origin)/",
            authentication: .init(
                loginEndpoint: origin, audiences: [Self.audience], tenant: "common", identityProvider: "AAD"),
            suffixes: .init(keyVaultDns: "vault.localhost\(portSuffix)")
        )
    }

    struct Endpoints: Encodable {
        struct Authentication: Encodable {
            var loginEndpoint: String
            var audiences: [String]
            var tenant: String
            var identityProvider: String
        }
        struct Suffixes: Encodable { var keyVaultDns: String }
        var name: String
        var resourceManager: String
        var authentication: Authentication
        var suffixes: Suffixes
    }

    struct Subscription: Encodable {
        struct Policies: Encodable {
            var locationPlacementId = "Public_2014-09-01"
            var quotaId = "Emulated_2026-01-01"
            var spendingLimit = "Off"
        }
        var id: String
        var authorizationSource = "RoleBased"
        var managedByTenants: [String] = []
        var subscriptionId: String
        var tenantId: String
        var displayName: String
        var state = "Enabled"
        var subscriptionPolicies = Policies()
    }

    struct SubscriptionList: Encodable {
        struct Count: Encodable {
            var type = "Total"
            var value: Int
        }
        var value: [Subscription]
        var count: Count
    }

    struct TenantList: Encodable {
        struct Tenant: Encodable {
            var id: String
            var tenantId: String
            var tenantCategory = "Home"
        }
        var value: [Tenant]
    }
}

extension Character {
    fileprivate var isASCIIDigit: Bool { ("0"..."9").contains(self) }
}
