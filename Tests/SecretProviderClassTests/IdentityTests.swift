import SecretProviderClass
import Testing

@Suite("Identity: workload identity, service principal, redaction (docs/secretproviderclass.md, Identity)")
struct IdentityTests {
    static let workloadIdentity = Fixture.parameters(["clientID": Fixture.clientId])

    @Test func workloadIdentityFromVolumeContext() throws {
        let attributes = Fixture.pod.merging([Fixture.tokensKey: Fixture.tokens()]) { $1 }
        let request = try #require(parsed(Self.workloadIdentity, podAttributes: attributes, secrets: [:]))
        #expect(
            request.identity
                == .workloadIdentity(
                    clientId: Fixture.clientId, serviceAccountToken: Fixture.token, tokenExpiration: Fixture.expiration)
        )
    }

    // With serviceAccountTokenInSecrets the tokens arrive in the secrets, which win over the volume context
    // (docs/secretproviderclass.md, Workload identity).
    @Test func tokensFromSecretsWinOverAttributes() throws {
        let attributes = Fixture.pod.merging([Fixture.tokensKey: Fixture.tokens(Fixture.otherToken)]) { $1 }
        let request = try #require(
            parsed(Self.workloadIdentity, podAttributes: attributes, secrets: [Fixture.tokensKey: Fixture.tokens()]))
        guard case .workloadIdentity(_, let token, _) = request.identity else {
            Issue.record("not workload identity: \(request.identity)")
            return
        }
        #expect(token == Fixture.token)

        let secretsOnly = try #require(parsed(Self.workloadIdentity, secrets: [Fixture.tokensKey: Fixture.tokens()]))
        #expect(
            secretsOnly.identity
                == .workloadIdentity(
                    clientId: Fixture.clientId, serviceAccountToken: Fixture.token, tokenExpiration: Fixture.expiration)
        )

        // A blank entry in the secrets does not hide the volume context's tokens.
        let blank = try #require(
            parsed(Self.workloadIdentity, podAttributes: attributes, secrets: [Fixture.tokensKey: " "]))
        #expect(
            blank.identity
                == .workloadIdentity(
                    clientId: Fixture.clientId, serviceAccountToken: Fixture.otherToken,
                    tokenExpiration: Fixture.expiration))
    }

    @Test func clientIDWithoutTokensIsAnErrorNotServicePrincipal() {
        expectParseError(
            .unauthenticated,
            "failed to build auth config for mode None: failed to parse workload identity tokens, error: service account tokens not found",
            "tokenRequests", "api://AzureADTokenExchange",
            parameters: Self.workloadIdentity, secrets: Fixture.spSecrets)
        expectParseError(
            .unauthenticated, "service account tokens not found",
            parameters: Self.workloadIdentity, podAttributes: Fixture.pod.merging([Fixture.tokensKey: ""]) { $1 },
            secrets: [:])
    }

    @Test func wrongAudience() {
        let attributes = Fixture.pod.merging([Fixture.tokensKey: Fixture.tokens(audience: "api://AKSIdentityBinding")])
        { $1 }
        expectParseError(
            .unauthenticated, "token for audience api://AzureADTokenExchange not found", "api://AKSIdentityBinding",
            "tokenRequests",
            parameters: Self.workloadIdentity, podAttributes: attributes, secrets: [:])
        expectParseError(
            .unauthenticated, "token for audience api://AzureADTokenExchange not found",
            parameters: Self.workloadIdentity, podAttributes: Fixture.pod.merging([Fixture.tokensKey: "{}"]) { $1 },
            secrets: [:])
    }

    // Malformed tokens: `invalid`, `"token":12345`; never echo any of it
    // (docs/secretproviderclass.md, Workload identity).
    @Test(arguments: [
        "invalid", "[]", #"{"api://AzureADTokenExchange":{"token":12345}}"#,
        #"{"api://AzureADTokenExchange":"just-a-string"}"#,
        #"{"api://AzureADTokenExchange":{"expirationTimestamp":"2026-11-29T03:00:00Z"}}"#,
        #"{"api://AzureADTokenExchange":{"token":"\#(Fixture.token)""#, "\(Fixture.token)",
    ])
    func malformedTokens(json: String) {
        let attributes = Fixture.pod.merging([Fixture.tokensKey: json]) { $1 }
        guard let error = parseError(Self.workloadIdentity, podAttributes: attributes, secrets: [:]) else { return }
        #expect(error.code == .unauthenticated)
        #expect(error.message.contains("failed to unmarshal service account tokens, error: "), "\(error.message)")
        #expect(!error.message.contains("12345"))
        #expect(!error.message.contains("just-a-string"))
    }

    @Test func emptyTokenInEntry() {
        let attributes = Fixture.pod.merging([Fixture.tokensKey: Fixture.tokens("  ")]) { $1 }
        expectParseError(
            .unauthenticated, "token for audience api://AzureADTokenExchange is empty",
            parameters: Self.workloadIdentity, podAttributes: attributes, secrets: [:])
    }

    @Test func clientIDMustBeAGUID() {
        let attributes = Fixture.pod.merging([Fixture.tokensKey: Fixture.tokens()]) { $1 }
        expectParseError(
            .invalidArgument, #"clientID "my-app" is not valid"#, "GUID",
            parameters: Fixture.parameters(["clientID": "my-app"]), podAttributes: attributes, secrets: [:])
    }

    // MARK: Service principal

    @Test(arguments: [
        ["clientid": Fixture.clientId, "clientsecret": Fixture.clientSecret],
        ["ClientID": Fixture.clientId, "ClientSecret": Fixture.clientSecret],
        ["CLIENTID": " \(Fixture.clientId) ", "clientSecret": Fixture.clientSecret],
    ])
    func servicePrincipalKeysAreCaseInsensitive(secrets: [String: String]) throws {
        let request = try #require(parsed(Fixture.parameters(), secrets: secrets))
        #expect(request.identity == .servicePrincipal(clientId: Fixture.clientId, clientSecret: Fixture.clientSecret))
    }

    @Test func servicePrincipalWithTokensAlsoInSecrets() throws {
        var secrets = Fixture.spSecrets
        secrets[Fixture.tokensKey] = Fixture.tokens()
        let request = try #require(parsed(Fixture.parameters(), secrets: secrets))
        #expect(request.identity == .servicePrincipal(clientId: Fixture.clientId, clientSecret: Fixture.clientSecret))
    }

    @Test func servicePrincipalErrors() {
        expectParseError(
            .unauthenticated, "failed to get credentials, nodePublishSecretRef secret is not set",
            "for workload identity set clientID",
            parameters: Fixture.parameters(), secrets: [:])
        // Tokens alone (serviceAccountTokenInSecrets) are not a nodePublishSecretRef.
        expectParseError(
            .unauthenticated, "nodePublishSecretRef secret is not set", parameters: Fixture.parameters(),
            secrets: [Fixture.tokensKey: Fixture.tokens()])
        expectParseError(
            .unauthenticated, "could not find clientid in secrets", parameters: Fixture.parameters(),
            secrets: ["clientsecret": Fixture.clientSecret])
        expectParseError(
            .unauthenticated, "could not find clientsecret in secrets", parameters: Fixture.parameters(),
            secrets: ["clientid": Fixture.clientId, "client-secret": Fixture.clientSecret])
        expectParseError(
            .unauthenticated, "could not find clientsecret in secrets", parameters: Fixture.parameters(),
            secrets: ["clientid": Fixture.clientId, "clientsecret": "  "])
        expectParseError(
            .unauthenticated, "clientid in secrets is not valid", parameters: Fixture.parameters(),
            secrets: ["clientid": Fixture.clientSecret, "clientsecret": Fixture.clientSecret])
        expectParseError(
            .unauthenticated, "userAssignedIdentityID is only used with useVMManagedIdentity",
            parameters: Fixture.parameters(["userAssignedIdentityID": Fixture.clientId]), secrets: [:])
    }

    // MARK: Redaction

    @Test func descriptionsNeverShowCredentials() throws {
        let attributes = Fixture.pod.merging([Fixture.tokensKey: Fixture.tokens()]) { $1 }
        let workload = try #require(parsed(Self.workloadIdentity, podAttributes: attributes, secrets: [:]))
        let servicePrincipal = try #require(parsed(Fixture.parameters()))
        for request in [workload, servicePrincipal] {
            var dumped = ""
            dump(request, to: &dumped)
            var dumpedIdentity = ""
            dump(request.identity, to: &dumpedIdentity)
            let texts = [
                "\(request)", String(describing: request), String(reflecting: request), dumped, "\(request.identity)",
                String(reflecting: request.identity), dumpedIdentity,
            ]
            for text in texts {
                #expect(text.contains("<redacted>"), "\(text)")
                #expect(text.contains(Fixture.clientId), "\(text)")
                for secret in Fixture.neverShown { #expect(!text.contains(secret), "\(text)") }
            }
        }
        #expect(
            "\(VolumeIdentity.nodeManagedIdentity(clientId: nil))" == "nodeManagedIdentity(clientId: system-assigned)")
    }
}
