import FoundationEssentials
import KeyVault
import PKI
import Testing

@testable import ObjectCache

@Suite("KeyVaultSource")
struct KeyVaultSourceTests {
    @Test(arguments: [
        (KeyVaultError.Kind.notFound, SourceError.Kind.notFound),
        (.forbidden, .forbidden), (.unauthorized, .forbidden), (.credential, .forbidden),
        (.challengeRejected, .forbidden),
        (.disabled, .disabled),
        (.throttled, .throttled),
        (.transport, .unavailable), (.serverError, .unavailable), (.cancelled, .unavailable),
        (.badRequest, .invalid), (.conflict, .invalid), (.invalidResponse, .invalid), (.configuration, .invalid),
    ])
    func errorKindsMap(from client: KeyVaultError.Kind, to expected: SourceError.Kind) {
        let error = KeyVaultError(
            kind: client, operation: "get secret 'db'", vault: "https://v.vault.azure.net", status: 403,
            detail: "detail", retryAfter: .seconds(7))
        let mapped = SourceError(error)
        #expect(mapped.kind == expected)
        #expect(mapped.message == error.description)
        #expect(mapped.retryAfter == .seconds(7))
    }

    // Found by a probe with a vault that listed ids ending in "..", ".", "a/b" and a newline: ls showed
    // them as names, "." and ".." twice, and names that failed stat.
    @Test func listingsShowOnlyNamesKeyVaultCanHave() {
        let names = ["ok", "..", ".", "a/b", "x\ny", "ok", "", String(repeating: "n", count: 128), "Also-OK-1"]
        #expect(KeyVaultSource.wellFormed(names.map { ListedObject(name: $0) }).map(\.name) == ["ok", "Also-OK-1"])
        let versions: [String?] = ["0123abcd", nil, "..", "0123abcd", "a/b", "", "ABCdef42"]
        #expect(
            KeyVaultSource.wellFormedVersions(versions.map { ListedObject(name: "db", version: $0) }).map(\.version)
                == ["0123abcd", "ABCdef42"])
    }

    @Test func secretBundleBecomesASecretWithItsMetadata() throws {
        let bundle = SecretBundle(
            value: "hunter2", id: "https://v.vault.azure.net/secrets/db/0123abcd", contentType: "text/plain",
            attributes: ObjectAttributes(enabled: true, notBefore: 1, expires: 2, created: 3, updated: 4),
            tags: ["team": "a"], kid: "https://v.vault.azure.net/keys/db/0123abcd", managed: true
        )
        let object = try KeyVaultSource.object(bundle, ObjectReference(kind: .secret, name: "db"))
        guard case .secret(let value) = object.payload else {
            Issue.record("expected a secret payload")
            return
        }
        #expect(Array(value) == Array("hunter2".utf8))
        #expect(
            object.metadata
                == ObjectMetadata(
                    id: bundle.id, version: "0123abcd", enabled: true, contentType: "text/plain", created: 3,
                    updated: 4, notBefore: 1, expires: 2,
                    tags: ["team": "a"], certificateBacked: true, managed: true
                )
        )
    }

    @Test func secretBundleWithoutValueIsInvalid() {
        let bundle = SecretBundle(value: nil, id: "https://v.vault.azure.net/secrets/db/0123abcd")
        #expect(throws: SourceError.self) {
            try KeyVaultSource.object(bundle, ObjectReference(kind: .secret, name: "db"))
        }
    }

    @Test func keyBundleLosesItsPrivateMembers() {
        let jwk = JSONWebKey(
            kty: "RSA", kid: "https://v.vault.azure.net/keys/signing/77ee", n: "modulus", e: "AQAB", d: "private",
            p: "p", q: "q")
        let object = KeyVaultSource.object(
            KeyBundle(key: jwk, attributes: ObjectAttributes(enabled: false), managed: nil),
            ObjectReference(kind: .key, name: "signing"))
        guard case .key(let key) = object.payload else {
            Issue.record("expected a key payload")
            return
        }
        #expect(key == jwk.publicOnly)
        #expect(object.metadata.version == "77ee")
        #expect(object.metadata.enabled == false)
        #expect(object.metadata.managed == false)
    }

    @Test func certificateBundleBecomesDER() throws {
        let bundle = CertificateBundle(
            id: "https://v.vault.azure.net/certificates/web/55aa", cer: Data([0x30, 0x82, 0x01]).base64EncodedString())
        let object = try KeyVaultSource.object(bundle, ObjectReference(kind: .certificate, name: "web"))
        guard case .certificate(let der) = object.payload else {
            Issue.record("expected a certificate payload")
            return
        }
        #expect(der == [0x30, 0x82, 0x01])
        #expect(object.metadata.version == "55aa")
        #expect(throws: SourceError.self) {
            try KeyVaultSource.object(
                CertificateBundle(id: bundle.id, cer: nil), ObjectReference(kind: .certificate, name: "web"))
        }
    }

    @Test func listItemsBecomeListedObjects() throws {
        let json =
            #"[{"id":"https://v.vault.azure.net/secrets/db","attributes":{"enabled":false,"created":3,"updated":4},"tags":{"t":"1"},"contentType":"application/x-pkcs12","managed":true}]"#
        let items = try JSONDecoder().decode([SecretItem].self, from: Data(json.utf8))
        #expect(
            items.map(KeyVaultSource.listed)
                == [
                    ListedObject(
                        name: "db", version: nil, enabled: false, managed: true, contentType: "application/x-pkcs12",
                        created: 3, updated: 4, tags: ["t": "1"])
                ]
        )
    }
}
