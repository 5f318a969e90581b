import SecretProviderClass
import Testing

/// `secretObjects` entries are checked against the volume's files before any Secret is written.
@Suite("secretObjects")
struct SecretObjectTests {
    static let files: Set<String> = ["db-password", "tls/web.pem", "history/0", "history/1", "config.json"]

    static func check(_ objects: [SecretObject]) throws(VolumeError) {
        try SecretObject.validate(objects, files: files, reference: "team-a/app")
    }

    @Test("Entries the driver's examples use pass")
    func accepted() throws {
        try Self.check([
            SecretObject(
                secretName: "db", type: "Opaque", labels: ["app.kubernetes.io/name": "web", "tier": ""],
                annotations: ["note/x": "any value"], data: [.init(objectName: "db-password", key: "password")]),
            SecretObject(
                secretName: "ingress-tls-csi", type: "kubernetes.io/tls",
                data: [
                    .init(objectName: "tls/web.pem", key: "tls.key"), .init(objectName: "tls/web.pem", key: "tls.crt"),
                ]),
            SecretObject(
                secretName: "registry", type: "kubernetes.io/dockerconfigjson",
                data: [.init(objectName: "config.json", key: ".dockerconfigjson")]),
            SecretObject(
                secretName: "first-version", type: "Opaque", data: [.init(objectName: "history/0", key: "value")]),
            SecretObject(
                secretName: "login", type: "kubernetes.io/basic-auth",
                data: [.init(objectName: "db-password", key: "password")]),
            SecretObject(
                secretName: "custom", type: "example.com/my-type",
                data: [.init(objectName: "db-password", key: "a_b-c.d")]),
        ])
    }

    @Test(
        "Bad entries are refused naming the entry, what is wrong and what is allowed",
        arguments: [
            (
                SecretObject(secretName: "", type: "Opaque", data: [.init(objectName: "db-password", key: "k")]),
                "secretObjects[0] of secretproviderclass team-a/app: secretName is empty"
            ),
            (
                SecretObject(
                    secretName: "Bad_Name", type: "Opaque", data: [.init(objectName: "db-password", key: "k")]),
                "secretName \"Bad_Name\" is not a valid Secret name"
            ),
            (
                SecretObject(secretName: "s", type: "", data: [.init(objectName: "db-password", key: "k")]),
                "type is empty"
            ),
            (
                SecretObject(secretName: "s", type: "Opaque\n", data: [.init(objectName: "db-password", key: "k")]),
                "type \"Opaque\\n\" is not a Secret type"
            ),
            (
                SecretObject(
                    secretName: "s", type: "kubernetes.io/service-account-token",
                    data: [.init(objectName: "db-password", key: "k")]), "cannot be filled from Key Vault"
            ),
            (SecretObject(secretName: "s", type: "Opaque", data: []), "data is empty"),
            (
                SecretObject(secretName: "s", type: "Opaque", data: [.init(objectName: "db-password", key: "")]),
                "a data entry's key is empty"
            ),
            (
                SecretObject(secretName: "s", type: "Opaque", data: [.init(objectName: "db-password", key: "a/b")]),
                "data key \"a/b\" is not a valid Secret key"
            ),
            (
                SecretObject(
                    secretName: "s", type: "Opaque",
                    data: [.init(objectName: "db-password", key: "k"), .init(objectName: "config.json", key: "k")]),
                "data key k appears twice"
            ),
            (
                SecretObject(secretName: "s", type: "Opaque", data: [.init(objectName: "", key: "k")]),
                "data key k has an empty objectName"
            ),
            (
                SecretObject(secretName: "s", type: "Opaque", data: [.init(objectName: "missing", key: "k")]),
                "names objectName \"missing\", which this volume does not mount"
            ),
            (
                SecretObject(
                    secretName: "s", type: "kubernetes.io/tls", data: [.init(objectName: "tls/web.pem", key: "tls.crt")]
                ), "a kubernetes.io/tls Secret needs the data key tls.key"
            ),
            (
                SecretObject(
                    secretName: "s", type: "kubernetes.io/tls", data: [.init(objectName: "tls/web.pem", key: "ca.crt")]),
                "data key ca.crt is not allowed in a kubernetes.io/tls Secret"
            ),
            (
                SecretObject(
                    secretName: "s", type: "kubernetes.io/basic-auth",
                    data: [.init(objectName: "db-password", key: "pw")]), "needs the data key username or password"
            ),
            (
                SecretObject(
                    secretName: "s", type: "kubernetes.io/ssh-auth",
                    data: [.init(objectName: "db-password", key: "key")]), "needs the data key ssh-privatekey"
            ),
            (
                SecretObject(
                    secretName: "s", type: "Opaque", labels: ["bad key!": "v"],
                    data: [.init(objectName: "db-password", key: "k")]), "label key \"bad key!\" is not valid"
            ),
            (
                SecretObject(
                    secretName: "s", type: "Opaque", labels: ["app": String(repeating: "v", count: 64)],
                    data: [.init(objectName: "db-password", key: "k")]), "label app's value"
            ),
            (
                SecretObject(
                    secretName: "s", type: "Opaque", annotations: ["/x": "v"],
                    data: [.init(objectName: "db-password", key: "k")]), "annotation key \"/x\" is not valid"
            ),
        ])
    func refused(object: SecretObject, message: String) {
        #expect {
            try Self.check([object])
        } throws: { error in
            guard let error = error as? VolumeError else { return false }
            return error.code == .invalidArgument && error.message.contains(message)
        }
    }

    @Test("A Secret named twice is refused")
    func duplicateSecret() {
        let object = SecretObject(secretName: "s", type: "Opaque", data: [.init(objectName: "db-password", key: "k")])
        #expect(throws: VolumeError.self) { try Self.check([object, object]) }
    }
}
