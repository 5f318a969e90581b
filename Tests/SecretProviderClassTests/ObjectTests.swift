import ObjectFormats
import SecretProviderClass
import Testing

@Suite("objects and per-object fields (docs/secretproviderclass.md, The objects parameter; Object fields)")
struct ObjectTests {
    @Test func theProvidersExample() throws {
        let objects = """
            array:
              - |
                objectName: secret1
                objectType: secret
            """
        let request = try #require(parsed(Fixture.parameters(["objects": objects])))
        #expect(request.objects == [VolumeObject(name: "secret1", type: .secret, path: ["secret1"])])
        let object = try #require(request.objects.first)
        #expect(object.version == nil && object.alias == nil && object.format == .pem && object.encoding == nil)
        #expect(object.permission == nil && object.versionHistory == 0 && object.isSingleVersion)
    }

    // `array:` with two `- |` blocks -> 2 objects (docs/secretproviderclass.md, The objects parameter).
    @Test func twoObjectsWithEveryField() throws {
        let objects = """
            array:
              - |
                objectName: secret1
                objectType: secret
                objectAlias: app/db-password
                objectVersion: 3a6a1e3d6b7a4c2f9e8d7c6b5a493827
                objectEncoding: base64
                filePermission: "0600"
              - |
                objectName: cert1
                objectType: cert
                objectFormat: pem
                objectVersionHistory: 3
            """
        let request = try #require(parsed(Fixture.parameters(["objects": objects])))
        #expect(request.objects.count == 2)
        #expect(
            request.objects[0]
                == VolumeObject(
                    name: "secret1", type: .secret, version: "3a6a1e3d6b7a4c2f9e8d7c6b5a493827",
                    alias: "app/db-password", encoding: .base64,
                    permission: 0o600, path: ["app", "db-password"]))
        #expect(request.objects[1] == VolumeObject(name: "cert1", type: .cert, versionHistory: 3, path: ["cert1"]))
    }

    @Test func stringFieldsAreTrimmedAndNullIsEmpty() throws {
        let object = try #require(
            parsedObject([
                ("objectName", "' secret1 '"), ("objectType", "\" secret \""), ("objectVersion", "~"),
                ("objectAlias", "null"),
            ]))
        #expect(object.name == "secret1")
        #expect(object.type == .secret)
        #expect(object.version == nil)
        #expect(object.alias == nil)
    }

    // MARK: objects YAML

    @Test func topLevelListOrGarbage() {
        expectObjectsError(
            "- objectName: secret1\n  objectType: secret\n",
            "failed to yaml unmarshal objects, error: yaml: unmarshal errors",
            "cannot unmarshal !!seq", "key array")
        expectObjectsError("just text", "failed to yaml unmarshal objects, error: yaml: unmarshal errors", "!!str")
        expectObjectsError(
            "array: [unclosed",
            "failed to yaml unmarshal objects, error: yaml: line 1, column 8: the flow sequence that starts here is not closed"
        )
        expectObjectsError("array:\n  - |\n    a\n bad: [", "failed to yaml unmarshal objects, error: yaml:")
        expectObjectsError(
            "array: secret1", "failed to yaml unmarshal objects, error: yaml: unmarshal errors",
            "cannot unmarshal !!str into array")
    }

    // The provider returns no files for an empty array and the driver then fails obscurely
    // (docs/secretproviderclass.md, Stricter: empty objects).
    @Test(arguments: ["array:", "array:\n", "array: []", "array: ~", "{}", "# nothing here\n"])
    func emptyArrayIsAnError(objects: String) {
        expectObjectsError(objects, "objects is empty: list at least one object")
    }

    @Test func unknownTopLevelKey() {
        expectObjectsError(
            "arrays:\n  - |\n    objectName: secret1\n    objectType: secret\n",
            #"objects has the unknown key "arrays" (did you mean array?)"#)
    }

    @Test func itemsMustBeStrings() {
        expectObjectsError(
            "array:\n  - objectName: secret1\n    objectType: secret\n", "failed to yaml unmarshal objects",
            "array item 0 is a !!map",
            "- |")
    }

    @Test func itemYAMLErrorsNameTheIndex() {
        let objects =
            "array:\n  - |\n    objectName: secret1\n    objectType: secret\n  - |\n    objectName: [unclosed\n"
        expectObjectsError(objects, "unmarshal failed for keyVaultObjects at index 1, error: yaml: line")
        expectObjectsError(
            "array:\n  - secret1\n", "unmarshal failed for keyVaultObjects at index 0", "cannot unmarshal !!str")
        expectObjectsError(
            "array:\n  - |\n    objectName:\n      nested: x\n", "unmarshal failed for keyVaultObjects at index 0",
            "!!map into objectName")
        expectObjectsError(
            "array:\n  - |\n    objectName: a\n    objectName: b\n", "unmarshal failed for keyVaultObjects at index 0",
            "already defined")
        expectObjectsError(
            Fixture.objects([[("objectName", "secret1"), ("objectType", "secret"), ("objectVersionHistory", "many")]]),
            #"unmarshal failed for keyVaultObjects at index 0, error: objectVersionHistory "many" is not an integer"#)
    }

    // Unknown object keys are typos (docs/secretproviderclass.md, Stricter: unknown object fields).
    @Test func unknownObjectFields() {
        expectObjectsError(
            Fixture.objects([[("objectName", "secret1"), ("objectType", "secret"), ("objectAliass", "db")]]),
            "failed to get objectType:secret, objectName:secret1, objectVersion:: unknown field objectAliass (did you mean objectAlias?)",
            "objectName, objectAlias, objectType, objectVersion, objectVersionHistory, objectFormat, objectEncoding, filePermission"
        )
        expectObjectsError(
            Fixture.objects([[("objectname", "secret1"), ("objectType", "secret")]]),
            "unknown field objectname (did you mean objectName?)")
    }

    // MARK: objectName

    @Test func objectNameRules() {
        expectObjectsError(
            Fixture.objects([[("objectType", "secret")]]),
            "failed to get objectType:secret, objectName:, objectVersion:: file name must not be empty",
            "(objects array item 0)")
        expectObjectsError(
            Fixture.objects([[("objectType", "secret"), ("objectAlias", "db")]]), "objectName is not set")
        expectObjectsError(
            "array:\n  - |\n    objectName: secret1\n    objectType: secret\n  - \"\"\n", "file name must not be empty",
            "(objects array item 1)")
        expectObjectsError(
            Fixture.objects([[("objectName", "my_secret"), ("objectType", "secret")]]),
            #"objectName "my_secret" is not a valid Key Vault object name"#)
        expectObjectsError(
            Fixture.objects([[("objectName", String(repeating: "a", count: 128)), ("objectType", "secret")]]),
            "is not a valid Key Vault object name")
    }

    // MARK: objectType (any case, before any fetch: docs/secretproviderclass.md, Stricter: object types)

    @Test(arguments: [
        ("secret", ObjectType.secret), ("key", .key), ("cert", .cert), ("Secret", .secret), ("KEY", .key),
        ("Cert", .cert),
    ])
    func objectTypeInAnyCase(text: String, type: ObjectType) throws {
        #expect(try #require(parsedObject([("objectName", "obj1"), ("objectType", text)])).type == type)
    }

    @Test func invalidObjectType() {
        expectObjectsError(
            Fixture.objects([[("objectName", "cert1"), ("objectType", "certificate")]]),
            "failed to get objectType:certificate, objectName:cert1, objectVersion:: Invalid vaultObjectTypes. Should be secret, key, or cert",
            "use cert for a certificate")
        expectObjectsError(
            Fixture.objects([[("objectName", "secret1")]]),
            "Invalid vaultObjectTypes. Should be secret, key, or cert (objectType is not set)")
        expectObjectsError(Fixture.objects([[("objectName", "x1"), ("objectType", "blob")]]), #"(got "blob")"#)
    }

    // MARK: objectFormat / objectEncoding (docs/secretproviderclass.md, Stricter: objectFormat and objectEncoding)

    @Test(arguments: [
        ("", "cert", CertificateFormat.pem), ("PFX", "secret", .pfx), ("pfx", "secret", .pfx), ("pem", "cert", .pem),
        ("PEM", "key", .pem), ("Pfx", "Secret", .pfx),
    ])
    func validFormats(format: String, type: String, expected: CertificateFormat) throws {
        var fields = [("objectName", "obj1"), ("objectType", type)]
        if !format.isEmpty { fields.append(("objectFormat", format)) }
        #expect(try #require(parsedObject(fields)).format == expected)
    }

    @Test(arguments: [
        ("BasE64", ObjectEncoding.base64), ("base64", .base64), ("hex", .hex), ("utf-8", .utf8), ("UTF-8", .utf8),
    ])
    func validEncodings(text: String, encoding: ObjectEncoding) throws {
        #expect(
            try #require(parsedObject([("objectName", "obj1"), ("objectType", "secret"), ("objectEncoding", text)]))
                .encoding == encoding)
    }

    @Test func formatAndEncodingErrors() {
        expectObjectsError(
            Fixture.objects([[("objectName", "secret1"), ("objectType", "secret"), ("objectFormat", "pkcs")]]),
            "failed to get objectType:secret, objectName:secret1, objectVersion:: invalid objectFormat: pkcs, should be PEM or PFX"
        )
        expectObjectsError(
            Fixture.objects([[("objectName", "secret1"), ("objectType", "secret"), ("objectEncoding", "utf-16")]]),
            "invalid objectEncoding: utf-16, should be hex, base64 or utf-8")
        expectObjectsError(
            Fixture.objects([
                [("objectName", "secret1"), ("objectType", "secret"), ("objectEncoding", "NotAnEncoding")]
            ]),
            "invalid objectEncoding: NotAnEncoding, should be hex, base64 or utf-8")
    }

    @Test(arguments: [("pfx", "cert"), ("PFX", "cert"), ("PFX", "key"), ("pfx", "Cert")])
    func pfxOnlyForSecrets(format: String, type: String) {
        expectObjectsError(
            Fixture.objects([[("objectName", "obj1"), ("objectType", type), ("objectFormat", format)]]),
            "PFX format only supported for objectType: secret")
    }

    @Test(arguments: [("base64", "cert"), ("BASE64", "Key"), ("utf-8", "cert"), ("hex", "KEY")])
    func encodingOnlyForSecrets(encoding: String, type: String) {
        expectObjectsError(
            Fixture.objects([[("objectName", "obj1"), ("objectType", type), ("objectEncoding", encoding)]]),
            "objectEncoding only supported for objectType: secret")
    }

    // MARK: filePermission (docs/secretproviderclass.md, Stricter: filePermission)

    @Test(arguments: [
        ("0600", UInt16(0o600)), ("600", 0o600), ("0440", 0o440), ("0644", 0o644), ("7", 0o7), ("0777", 0o777),
        ("0000", 0),
        // As Go's strconv.ParseInt(text, 8, 32) reads them, which is how the provider does.
        ("00600", 0o600), ("0000000644", 0o644), ("+600", 0o600),
    ])
    func validPermissions(text: String, mode: UInt16) throws {
        let object = try #require(
            parsedObject([("objectName", "obj1"), ("objectType", "secret"), ("filePermission", "\"\(text)\"")]))
        #expect(object.permission == mode)
    }

    @Test func noPermissionMeansTheVolumeDefault() throws {
        #expect(
            try #require(parsedObject([("objectName", "obj1"), ("objectType", "secret"), ("filePermission", "\"\"")]))
                .permission == nil)
    }

    @Test(arguments: [
        "0900", "900", "abc", "-600", "+", "+-600", "0o600", "0x1f", "6 0 0", "08", "017777", "77777777777",
    ])
    func invalidPermissions(text: String) {
        expectObjectsError(
            Fixture.objects([[("objectName", "obj1"), ("objectType", "secret"), ("filePermission", "\"\(text)\"")]]),
            "failed to get objectType:secret, objectName:obj1, objectVersion:: invalid filePermission", "octal")
    }

    @Test(arguments: ["4755", "2644", "1777", "06000"])
    func specialModeBitsAreRefused(text: String) {
        expectObjectsError(
            Fixture.objects([[("objectName", "obj1"), ("objectType", "secret"), ("filePermission", "\"\(text)\"")]]),
            "invalid filePermission", "setuid, setgid and sticky bits are not allowed")
    }

    // MARK: objectVersion / objectVersionHistory

    @Test(
        arguments: [
            ("", nil), ("latest", nil), ("Latest", nil),
            ("3a6a1e3d6b7a4c2f9e8d7c6b5a493827", "3a6a1e3d6b7a4c2f9e8d7c6b5a493827"),
        ] as [(String, String?)])
    func versions(text: String, version: String?) throws {
        let object = try #require(
            parsedObject([("objectName", "obj1"), ("objectType", "secret"), ("objectVersion", "\"\(text)\"")]))
        #expect(object.version == version)
    }

    @Test func invalidVersion() {
        expectObjectsError(
            Fixture.objects([[("objectName", "obj1"), ("objectType", "secret"), ("objectVersion", "v1/../x")]]),
            #"failed to get objectType:secret, objectName:obj1, objectVersion:v1/../x: objectVersion "v1/../x" is not valid"#
        )
    }

    @Test(arguments: [
        ("0", 0, true), ("1", 1, true), ("2", 2, false), ("4", 4, false), ("50", 50, false), ("\"5\"", 5, false),
        // Integers as yaml.v3, the provider's YAML library, reads them: a leading 0 is octal, as in Go.
        ("010", 8, false), ("08", 8, false), ("0x3", 3, false), ("0o5", 5, false), ("0b11", 3, false),
        ("1_0", 10, false),
        ("+3", 3, false), ("3.0", 3, false), ("3.", 3, false), ("3e0", 3, false), ("-0", 0, true),
    ])
    func versionHistoryRange(text: String, history: Int, single: Bool) throws {
        let object = try #require(
            parsedObject([("objectName", "obj1"), ("objectType", "secret"), ("objectVersionHistory", text)]))
        #expect(object.versionHistory == history)
        #expect(object.isSingleVersion == single)
        #expect(object.path == ["obj1"])
    }

    @Test func mergeKeysSaySo() {
        expectObjectsError(
            "array:\n  - |\n    objectName: obj1\n    objectType: secret\n    <<: {objectAlias: m}\n",
            "unmarshal failed for keyVaultObjects at index 0, error: yaml: line 3: merge keys (<<) are not supported")
    }

    @Test(arguments: ["many", "3.5", ".", "0x", "1.2.3", "0x1p2", "inf", "1e", "2026-01-01"])
    func versionHistoryThatIsNotAWholeNumber(text: String) {
        expectObjectsError(
            Fixture.objects([[("objectName", "obj1"), ("objectType", "secret"), ("objectVersionHistory", text)]]),
            "objectVersionHistory \"\(text)\" is not an integer")
    }

    @Test(arguments: ["51", "200", "-1"])
    func versionHistoryOutOfRange(text: String) {
        expectObjectsError(
            Fixture.objects([[("objectName", "obj1"), ("objectType", "secret"), ("objectVersionHistory", text)]]),
            "objectVersionHistory \(text) is not valid", "2 to 50")
    }

    // MARK: Failures after parsing use the same wrapper

    @Test func failureWrapper() {
        let object = VolumeObject(name: "secret1", type: .secret)
        let error = object.failure(.notFound, "SecretNotFound")
        #expect(
            error
                == VolumeError(
                    .notFound, "failed to get objectType:secret, objectName:secret1, objectVersion:: SecretNotFound"))
        #expect(VolumeError.Code.invalidArgument.grpcStatus == 3)
        #expect(VolumeError.Code.notFound.grpcStatus == 5)
        #expect(VolumeError.Code.failedPrecondition.grpcStatus == 9)
        #expect(VolumeError.Code.internalError.grpcStatus == 13)
        #expect(VolumeError.Code.unauthenticated.grpcStatus == 16)
    }
}
