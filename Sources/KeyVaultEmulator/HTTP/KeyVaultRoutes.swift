/// A Key Vault data-plane operation, recognised from method and path, with what it needs from
/// the access rules.
enum KeyVaultOperation: Equatable {
    case list(ObjectKind)
    case get(ObjectKind, name: String, version: String?)
    case listVersions(ObjectKind, name: String)
    case update(ObjectKind, name: String, version: String?)
    case delete(ObjectKind, name: String)
    case listDeleted(ObjectKind)
    case getDeleted(ObjectKind, name: String)
    case purge(ObjectKind, name: String)
    case recover(ObjectKind, name: String)
    case setSecret(name: String)
    case createKey(name: String)
    case importKey(name: String)
    case createCertificate(name: String)
    case importCertificate(name: String)
    case certificateOperation(name: String)
    case certificatePolicy(name: String)

    var kind: ObjectKind {
        switch self {
        case .list(let kind), .get(let kind, _, _), .listVersions(let kind, _), .update(let kind, _, _),
            .delete(let kind, _),
            .listDeleted(let kind), .getDeleted(let kind, _), .purge(let kind, _), .recover(let kind, _):
            kind
        case .setSecret: .secrets
        case .createKey, .importKey: .keys
        case .createCertificate, .importCertificate, .certificateOperation, .certificatePolicy: .certificates
        }
    }

    var objectName: String? {
        switch self {
        case .list, .listDeleted: nil
        case .get(_, let name, _), .listVersions(_, let name), .update(_, let name, _), .delete(_, let name),
            .getDeleted(_, let name),
            .purge(_, let name), .recover(_, let name), .setSecret(let name), .createKey(let name),
            .importKey(let name),
            .createCertificate(let name), .importCertificate(let name), .certificateOperation(let name),
            .certificatePolicy(let name):
            name
        }
    }

    var permission: Permission {
        switch self {
        case .list, .listVersions, .listDeleted: .list
        case .get, .getDeleted, .certificateOperation, .certificatePolicy: .get
        case .update(let kind, _, _): kind == .secrets ? .set : .update
        case .delete: .delete
        case .purge: .purge
        case .recover: .recover
        case .setSecret: .set
        case .createKey, .createCertificate: .create
        case .importKey, .importCertificate: .import
        }
    }

    /// Maps `METHOD /segments…` to an operation, or explains why it is not one.
    static func route(method: String, segments: [String]) throws(KeyVaultFailure) -> KeyVaultOperation {
        guard let first = segments.first else { throw .unknownRoute("/") }
        let path = "/" + segments.joined(separator: "/")
        if let kind = ObjectKind(rawValue: first.lowercased()) {
            return try objectRoute(kind, method: method, rest: Array(segments.dropFirst()), path: path)
        }
        if let kind = ObjectKind.allCases.first(where: { $0.deletedPathSegment == first.lowercased() }) {
            return try deletedRoute(kind, method: method, rest: Array(segments.dropFirst()), path: path)
        }
        throw .unknownRoute(path)
    }

    private static func objectRoute(_ kind: ObjectKind, method: String, rest: [String], path: String)
        throws(KeyVaultFailure) -> KeyVaultOperation
    {
        switch rest.count {
        case 0:
            guard method == "GET" else { throw .methodNotAllowed }
            return .list(kind)
        case 1:
            let name = try validName(rest[0], kind)
            switch (method, kind) {
            case ("GET", _): return .get(kind, name: name, version: nil)
            case ("PATCH", _): return .update(kind, name: name, version: nil)
            case ("DELETE", _): return .delete(kind, name: name)
            case ("PUT", .secrets): return .setSecret(name: name)
            case ("PUT", .keys): return .importKey(name: name)
            default: throw .methodNotAllowed
            }
        case 2:
            let name = try validName(rest[0], kind)
            let action = rest[1]
            switch (method, kind, action.lowercased()) {
            case ("GET", _, "versions"): return .listVersions(kind, name: name)
            case ("POST", .keys, "create"): return .createKey(name: name)
            case ("POST", .certificates, "create"): return .createCertificate(name: name)
            case ("POST", .certificates, "import"): return .importCertificate(name: name)
            case ("GET", .certificates, "pending"): return .certificateOperation(name: name)
            case ("GET", .certificates, "policy"): return .certificatePolicy(name: name)
            case ("GET", _, _): return .get(kind, name: name, version: action)
            case ("PATCH", _, _): return .update(kind, name: name, version: action)
            default: throw .methodNotAllowed
            }
        default:
            throw .unknownRoute(path)
        }
    }

    private static func deletedRoute(_ kind: ObjectKind, method: String, rest: [String], path: String)
        throws(KeyVaultFailure) -> KeyVaultOperation
    {
        switch (method, rest.count) {
        case ("GET", 0): return .listDeleted(kind)
        case ("GET", 1): return .getDeleted(kind, name: try validName(rest[0], kind))
        case ("DELETE", 1): return .purge(kind, name: try validName(rest[0], kind))
        case ("POST", 2) where rest[1].lowercased() == "recover":
            return .recover(kind, name: try validName(rest[0], kind))
        case (_, 0...2): throw .methodNotAllowed
        default: throw .unknownRoute(path)
        }
    }

    private static func validName(_ name: String, _ kind: ObjectKind) throws(KeyVaultFailure) -> String {
        guard Identifiers.isValidObjectName(name) else {
            throw .badParameter(
                "The request URI contains an invalid \(kind.singular) name '\(name)'. Names are \(Identifiers.objectNameRule)."
            )
        }
        return name
    }
}
