import SecretProviderClass
import Testing

/// Shared inputs: a pod, a tenant, credentials whose values must never show up in an error.
enum Fixture {
    static let tenant = "72f988bf-86f1-41af-91ab-2d7cd011db47"
    static let clientId = "5c6b4a1e-8d2f-4e3a-9b7c-0123456789ab"
    static let clientSecret = "sp-Secret~Value.DoNotLeak"
    static let token =
        "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQ6ZGVmYXVsdDphcHAifQ.c2lnbmF0dXJlLWRvLW5vdC1sZWFr"
    static let otherToken = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhdHRyaWJ1dGVzLXRva2VuIn0.YXR0cmlidXRlcy1zaWduYXR1cmU"
    static let expiration = "2026-11-29T03:00:00Z"
    static let tokensKey = "csi.storage.k8s.io/serviceAccount.tokens"
    /// Substrings that must never appear in any error text or description.
    static let neverShown = [clientSecret, token, otherToken, "c2lnbmF0dXJl"]

    static let pod = [
        "csi.storage.k8s.io/pod.name": "app-0",
        "csi.storage.k8s.io/pod.namespace": "default",
    ]
    static let spSecrets = ["clientid": clientId, "clientsecret": clientSecret]

    static func tokens(_ token: String = token, audience: String = "api://AzureADTokenExchange") -> String {
        #"{"\#(audience)":{"token":"\#(token)","expirationTimestamp":"\#(expiration)"}}"#
    }

    /// One object as the `- |` YAML string the provider expects.
    static func object(_ fields: [(String, String)]) -> String {
        fields.map { "      \($0.0): \($0.1)" }.joined(separator: "\n")
    }

    /// `objects` with one `- |` item per object.
    static func objects(_ items: [[(String, String)]]) -> String {
        "array:\n" + items.map { "  - |\n" + object($0) }.joined(separator: "\n") + "\n"
    }

    static let secret1 = objects([[("objectName", "secret1"), ("objectType", "secret")]])

    /// Valid SecretProviderClass parameters for service-principal mode, with `changes` applied (nil removes a key).
    static func parameters(_ changes: [String: String?] = [:]) -> [String: String] {
        var parameters = ["keyvaultName": "testkv", "tenantId": tenant, "objects": secret1]
        for (key, value) in changes { parameters[key] = value }
        return parameters
    }
}

/// Parses, recording an issue if it fails.
func parsed(
    _ parameters: [String: String], podAttributes: [String: String] = Fixture.pod,
    secrets: [String: String] = Fixture.spSecrets,
    options: ParserOptions = ParserOptions(), sourceLocation: SourceLocation = #_sourceLocation
) -> VolumeRequest? {
    do {
        return try SecretProviderClassParser.parse(
            parameters: parameters, podAttributes: podAttributes, secrets: secrets, options: options)
    } catch {
        Issue.record("unexpected error: \(error.message)", sourceLocation: sourceLocation)
        return nil
    }
}

/// The parse error, recording an issue if there is none; also checks that no credential leaks into it.
func parseError(
    _ parameters: [String: String], podAttributes: [String: String] = Fixture.pod,
    secrets: [String: String] = Fixture.spSecrets,
    options: ParserOptions = ParserOptions(), sourceLocation: SourceLocation = #_sourceLocation
) -> VolumeError? {
    do {
        let request = try SecretProviderClassParser.parse(
            parameters: parameters, podAttributes: podAttributes, secrets: secrets, options: options)
        Issue.record("expected an error, got \(request)", sourceLocation: sourceLocation)
        return nil
    } catch {
        for secret in Fixture.neverShown {
            #expect(
                !error.message.contains(secret), "credential in error: \(error.message)", sourceLocation: sourceLocation
            )
        }
        #expect(error.description == error.message, sourceLocation: sourceLocation)
        return error
    }
}

/// Expects a parse error with `code` whose message contains every fragment.
func expectParseError(
    _ code: VolumeError.Code, _ fragments: String..., parameters: [String: String],
    podAttributes: [String: String] = Fixture.pod,
    secrets: [String: String] = Fixture.spSecrets, options: ParserOptions = ParserOptions(),
    sourceLocation: SourceLocation = #_sourceLocation
) {
    guard
        let error = parseError(
            parameters, podAttributes: podAttributes, secrets: secrets, options: options, sourceLocation: sourceLocation
        )
    else { return }
    #expect(error.code == code, "\(error.message)", sourceLocation: sourceLocation)
    for fragment in fragments {
        #expect(
            error.message.contains(fragment), "\"\(error.message)\" lacks \"\(fragment)\"",
            sourceLocation: sourceLocation)
    }
}

/// Expects the objects parameter `objects` to fail with invalidArgument containing every fragment.
func expectObjectsError(_ objects: String, _ fragments: String..., sourceLocation: SourceLocation = #_sourceLocation) {
    guard let error = parseError(Fixture.parameters(["objects": objects]), sourceLocation: sourceLocation) else {
        return
    }
    #expect(error.code == .invalidArgument, "\(error.message)", sourceLocation: sourceLocation)
    for fragment in fragments {
        #expect(
            error.message.contains(fragment), "\"\(error.message)\" lacks \"\(fragment)\"",
            sourceLocation: sourceLocation)
    }
}

/// The single object parsed from one item with `fields`.
func parsedObject(_ fields: [(String, String)], sourceLocation: SourceLocation = #_sourceLocation) -> VolumeObject? {
    parsed(Fixture.parameters(["objects": Fixture.objects([fields])]), sourceLocation: sourceLocation)?.objects.first
}
