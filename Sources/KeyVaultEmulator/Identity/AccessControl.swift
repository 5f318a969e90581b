/// Permissions in the vocabulary of Key Vault access policies. Each request needs one.
enum Permission: String, Sendable, CaseIterable {
    case get, list, set, update, create, `import`, delete, recover, purge

    static func allowed(for kind: ObjectKind) -> [Permission] {
        switch kind {
        case .secrets: [.get, .list, .set, .delete, .recover, .purge]
        case .keys, .certificates: [.get, .list, .update, .create, .import, .delete, .recover, .purge]
        }
    }

    /// The RBAC data action Key Vault names in its 403 message.
    func dataAction(_ kind: ObjectKind) -> String {
        let verb: String
        switch self {
        case .get: verb = kind == .secrets ? "getSecret/action" : "read"
        case .list: verb = "read"
        case .set: verb = "setSecret/action"
        case .update: verb = "update/action"
        case .create: verb = "create/action"
        case .import: verb = "import/action"
        case .delete: verb = "delete"
        case .recover: verb = "recover/action"
        case .purge: verb = "purge/action"
        }
        return "Microsoft.KeyVault/vaults/\(kind.rawValue)/\(verb)"
    }
}

/// Per-vault grants from the seed. A vault without rules is open to everyone; a vault with rules
/// answers 403 ForbiddenByRbac to anything they do not grant.
struct AccessControl: Sendable {
    private struct Grant: Hashable {
        var kind: ObjectKind
        var permission: Permission
    }

    /// vault (lower-cased) -> object id -> grants
    private var restricted: [String: [String: Set<Grant>]] = [:]

    init(seed: Seed, identities: IdentityRegistry) throws(SeedError) {
        for vault in seed.vaults {
            guard let rules = vault.access else { continue }
            var grantsByObjectId: [String: Set<Grant>] = [:]
            for (index, rule) in rules.enumerated() {
                let place = "vaults[\(vault.name)].access[\(index)]"
                guard let identity = identities.resolve(rule.identity) else {
                    throw SeedError(
                        path: "<seed>",
                        problem:
                            "\(place): identity '\(rule.identity)' is not defined; name one from 'identities' by name, clientId or objectId"
                    )
                }
                var grants = grantsByObjectId[identity.principal.objectId.lowercased(), default: []]
                for (kind, names) in [
                    (ObjectKind.secrets, rule.secrets), (.keys, rule.keys), (.certificates, rule.certificates),
                ] {
                    for name in names {
                        if name == "all" {
                            Permission.allowed(for: kind).forEach { grants.insert(Grant(kind: kind, permission: $0)) }
                            continue
                        }
                        guard let permission = Permission(rawValue: name),
                            Permission.allowed(for: kind).contains(permission)
                        else {
                            let allowed = Permission.allowed(for: kind).map(\.rawValue) + ["all"]
                            throw SeedError(
                                path: "<seed>",
                                problem:
                                    "\(place).\(kind.rawValue): unknown permission '\(name)'; allowed: \(allowed.joined(separator: ", "))"
                            )
                        }
                        grants.insert(Grant(kind: kind, permission: permission))
                    }
                }
                grantsByObjectId[identity.principal.objectId.lowercased()] = grants
            }
            restricted[vault.name.lowercased()] = grantsByObjectId
        }
    }

    func check(
        _ principal: Principal,
        tenantId: String,
        vault: String,
        kind: ObjectKind,
        permission: Permission,
        objectName: String?
    ) throws(KeyVaultFailure) {
        guard let grants = restricted[vault.lowercased()] else { return }
        if grants[principal.objectId.lowercased()]?.contains(Grant(kind: kind, permission: permission)) == true {
            return
        }
        let resource =
            "/subscriptions/00000000-0000-0000-0000-000000000000/resourcegroups/emulator/providers/microsoft.keyvault/vaults/\(vault)"
            + (objectName.map { "/\(kind.rawValue)/\($0)" } ?? "")
        throw KeyVaultFailure(
            status: 403,
            code: "Forbidden",
            message: "Caller is not authorized to perform action on resource.\r\n"
                + "If role assignments, deny assignments or role definitions were changed recently, please observe propagation time.\r\n"
                + "Caller: appid=\(principal.clientId);oid=\(principal.objectId);iss=https://sts.windows.net/\(tenantId)/\r\n"
                + "Action: '\(permission.dataAction(kind))'\r\n"
                + "Resource: '\(resource)'\r\n"
                + "Assignment: (not found)\r\n"
                + "DecisionReason: 'DeniedWithNoValidRBAC' \r\n"
                + "Vault: \(vault);location=emulator\r\n",
            innerCode: "ForbiddenByRbac"
        )
    }
}
