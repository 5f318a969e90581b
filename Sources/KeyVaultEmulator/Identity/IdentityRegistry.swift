import PKI

/// Who a token speaks for; carried in the token as `oid`, `appid` and `tid`.
struct Principal: Sendable, Equatable {
    enum Kind: String, Sendable { case servicePrincipal, managedIdentity }
    var name: String?
    var kind: Kind
    var clientId: String
    var objectId: String
    var resourceId: String?
}

/// An identity the emulator knows, from the seed or met for the first time in open mode.
struct RegisteredIdentity: Sendable {
    var principal: Principal
    /// Service principals: when set, the only accepted client secret.
    var clientSecret: String?
    /// Service principals: certificates whose keys may sign client assertions.
    var certificates: [Certificate]
    /// Service principals: accepted federated subjects; nil accepts any.
    var federatedSubjects: [String]?
    var systemAssigned: Bool
}

/// Identities by client id, object id and resource id. Immutable after start.
struct IdentityRegistry: Sendable {
    let identities: [RegisteredIdentity]
    let allowUnknown: Bool
    /// The machine's system-assigned managed identity (from the seed, or a generated one).
    let systemAssigned: RegisteredIdentity

    init(seed: Seed) throws(SeedError) {
        var identities: [RegisteredIdentity] = []
        for entry in seed.identities {
            var certificates: [Certificate] = []
            if let pem = entry.certificate {
                do {
                    certificates = try Certificate.all(fromPEM: pem)
                } catch {
                    throw SeedError(
                        path: "<seed>",
                        problem: "identity '\(entry.name)': certificate is not valid PEM (\(error.reason))")
                }
            }
            let kind: Principal.Kind = entry.type == .servicePrincipal ? .servicePrincipal : .managedIdentity
            identities.append(
                RegisteredIdentity(
                    principal: Principal(
                        name: entry.name,
                        kind: kind,
                        clientId: entry.clientId ?? Identifiers.stableUUID(from: "client:\(entry.name)"),
                        objectId: entry.objectId ?? Identifiers.stableUUID(from: "object:\(entry.name)"),
                        resourceId: entry.resourceId
                            ?? (kind == .managedIdentity && entry.systemAssigned != true
                                ? "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/emulator/providers/Microsoft.ManagedIdentity/userAssignedIdentities/\(entry.name)"
                                : nil)
                    ),
                    clientSecret: entry.clientSecret,
                    certificates: certificates,
                    federatedSubjects: entry.federatedSubjects,
                    systemAssigned: entry.systemAssigned == true
                )
            )
        }
        self.identities = identities
        self.allowUnknown = seed.allowUnknownIdentities
        self.systemAssigned =
            identities.first(where: \.systemAssigned)
            ?? RegisteredIdentity(
                principal: Principal(
                    name: "system-assigned",
                    kind: .managedIdentity,
                    clientId: Identifiers.stableUUID(from: "client:system-assigned"),
                    objectId: Identifiers.stableUUID(from: "object:system-assigned"),
                    resourceId:
                        "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/emulator/providers/Microsoft.Compute/virtualMachines/emulator"
                ),
                clientSecret: nil,
                certificates: [],
                federatedSubjects: nil,
                systemAssigned: true
            )
    }

    /// A seed name, client id or object id, as used in access rules.
    func resolve(_ reference: String) -> RegisteredIdentity? {
        let wanted = reference.lowercased()
        return (identities + [systemAssigned]).first {
            $0.principal.name?.lowercased() == wanted || $0.principal.clientId.lowercased() == wanted
                || $0.principal.objectId.lowercased() == wanted
        }
    }

    /// The application a token request names. Unknown client ids are accepted as new identities
    /// in open mode, with an object id derived from the client id.
    func application(clientId: String) -> RegisteredIdentity? {
        if let known = identities.first(where: {
            $0.principal.kind == .servicePrincipal && $0.principal.clientId.lowercased() == clientId.lowercased()
        }) {
            return known
        }
        guard allowUnknown else { return nil }
        return RegisteredIdentity(
            principal: Principal(
                name: nil, kind: .servicePrincipal, clientId: clientId,
                objectId: Identifiers.stableUUID(from: "object-of:\(clientId.lowercased())")),
            clientSecret: nil,
            certificates: [],
            federatedSubjects: nil,
            systemAssigned: false
        )
    }

    enum ManagedIdentitySelector: Sendable {
        case systemAssigned
        case clientId(String)
        case objectId(String)
        case resourceId(String)
    }

    func managedIdentity(_ selector: ManagedIdentitySelector) -> RegisteredIdentity? {
        let userAssigned = identities.filter { $0.principal.kind == .managedIdentity && !$0.systemAssigned }
        switch selector {
        case .systemAssigned:
            return systemAssigned
        case .clientId(let id):
            if let found = userAssigned.first(where: { $0.principal.clientId.lowercased() == id.lowercased() }) {
                return found
            }
            return unknownManagedIdentity(clientId: id, objectId: nil, resourceId: nil)
        case .objectId(let id):
            if let found = userAssigned.first(where: { $0.principal.objectId.lowercased() == id.lowercased() }) {
                return found
            }
            return unknownManagedIdentity(clientId: nil, objectId: id, resourceId: nil)
        case .resourceId(let id):
            if let found = userAssigned.first(where: { $0.principal.resourceId?.lowercased() == id.lowercased() }) {
                return found
            }
            return unknownManagedIdentity(clientId: nil, objectId: nil, resourceId: id)
        }
    }

    private func unknownManagedIdentity(clientId: String?, objectId: String?, resourceId: String?)
        -> RegisteredIdentity?
    {
        guard allowUnknown else { return nil }
        let anchor = (clientId ?? objectId ?? resourceId ?? "").lowercased()
        return RegisteredIdentity(
            principal: Principal(
                name: nil,
                kind: .managedIdentity,
                clientId: clientId ?? Identifiers.stableUUID(from: "mi-client:\(anchor)"),
                objectId: objectId ?? Identifiers.stableUUID(from: "mi-object:\(anchor)"),
                resourceId: resourceId
            ),
            clientSecret: nil,
            certificates: [],
            federatedSubjects: nil,
            systemAssigned: false
        )
    }
}
