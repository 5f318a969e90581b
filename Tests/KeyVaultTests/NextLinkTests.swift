import AzureIdentity
import Foundation
import HTTPTransport
import HTTPTypes
import KeyVault
import Synchronization
import Testing

@Suite("Following a page's nextLink")
struct NextLinkTests {
    // Found by the kv-page fuzz target (Fuzz/corpus/kv-page/found-link-with-space.json): a link read
    // ahead of the page's decode was sent as the next request's target, space and all.
    // The same target later found raw braces (Fuzz/corpus/kv-page/found-link-with-braces.json).
    @Test(
        "A nextLink with characters no URL has fails the listing and is never requested",
        arguments: [
            #"{ "nextLink" : "https://contoso-kv.vault.azure.net/keys?$skiptokString "value": [] }"#,
            #"{"value":[],"nextLink":"https://contoso-kv.vault.azure.net/cerol{{IIn=7.6&$skiptoken=abc"}"#,
            #"{"value":[],"nextLink":"https://contoso-kv.vault.azure.net/keys?$skiptoken=a b"}"#,
            #"{"value":[],"nextLink":"https://contoso-kv.vault.azure.net/keys?$skiptoken=a\r\nHost: evil"}"#,
            #"{"value":[],"nextLink":"https://contoso-kv.vault.azure.net/kéys"}"#,
        ])
    func malformedLink(page: String) async throws {
        let vault = PagedVault(pages: [page])
        await #expect {
            try await vault.client().listKeys()
        } throws: { error in
            (error as? KeyVaultError)?.kind == .invalidResponse
        }
        #expect(vault.requests.count == 1)
    }

    // Found by a probe: a vault whose nextLink pointed back was followed 114 times in every 5 s attempt.
    @Test("A nextLink that goes back to an earlier page fails the listing")
    func linkLoop() async throws {
        let loop = #"{"value":[],"nextLink":"https://contoso-kv.vault.azure.net/keys?$skiptoken=a"}"#
        let vault = PagedVault(pages: [loop, loop, loop])
        await #expect {
            try await vault.client().listKeys()
        } throws: { error in
            (error as? KeyVaultError)?.kind == .invalidResponse
                && (error as? KeyVaultError)?.description.contains("loop") == true
        }
        #expect(vault.requests.count == 2)
    }

    @Test("A good nextLink is requested on this vault with the client's api-version")
    func goodLink() async throws {
        let vault = PagedVault(pages: [
            #"{"value":[{"kid":"https://contoso-kv.vault.azure.net/keys/a"}],"nextLink":"https://contoso-kv.vault.azure.net:443/keys?api-version=7.4&$skiptoken=b%20c"}"#
        ])
        #expect(try await vault.client().listKeys().map(\.name) == ["a"])
        #expect(vault.requests == ["/keys?api-version=7.6", "/keys?api-version=7.6&$skiptoken=b%20c"])
    }

    // Found when the kv-page fuzz target's check became "the request is the link's path and query
    // as a URL parser reads them" (Fuzz/corpus/kv-page/link-without-path.json): the authority was
    // read up to the first '/', so a link without a path lost its query.
    @Test("A nextLink without a path keeps its query")
    func linkWithoutPath() async throws {
        let vault = PagedVault(pages: [#"{"value":[],"nextLink":"https://contoso-kv.vault.azure.net?$skiptoken=a/b"}"#])
        _ = try await vault.client().listKeys()
        #expect(vault.requests == ["/keys?api-version=7.6", "/?api-version=7.6&$skiptoken=a/b"])
    }

    // Found by the kv-page fuzz target (Fuzz/corpus/kv-page/found-item-without-value.json): items
    // were rebuilt as key=value, so "?flag" was requested as "?flag=".
    @Test("A nextLink's query items are sent as written, but for api-version")
    func queryAsWritten() async throws {
        let vault = PagedVault(pages: [
            #"{"value":[],"nextLink":"https://contoso-kv.vault.azure.net/keys?api-version&flag&$skiptoken=a=b&api-version=7.4"}"#
        ])
        _ = try await vault.client().listKeys()
        #expect(vault.requests == ["/keys?api-version=7.6", "/keys?api-version=7.6&flag&$skiptoken=a=b"])
    }

    // Found by the kv-page fuzz target (Fuzz/corpus/kv-page/found-link-named-twice.json): with two
    // nextLink members the read-ahead takes the last and JSONDecoder the first. JSON leaves
    // duplicate names undefined, so the listing may not trust either: it fails (after the one
    // request already sent for the read-ahead link, which goes to this vault anyway).
    @Test("A page naming nextLink twice fails the listing")
    func linkNamedTwice() async throws {
        let page =
            #"{"value":[],"nextLink":"https://contoso-kv.vault.azure.net/keys?a=1","nextLink":"https://contoso-kv.vault.azure.net/keys?b=2"}"#
        let vault = PagedVault(pages: [page])
        await #expect {
            try await vault.client().listKeys()
        } throws: { error in
            (error as? KeyVaultError)?.kind == .invalidResponse
        }
    }
}

/// Answers like a vault: a Bearer challenge to unauthenticated requests, then `pages` in order
/// (an empty last page after them), recording each authenticated request's target.
private final class PagedVault: HTTPClient {
    private let pages: [String]
    private let sent = Mutex<[String]>([])

    init(pages: [String]) {
        self.pages = pages
    }

    var requests: [String] { sent.withLock { $0 } }

    func client() throws -> KeyVaultClient {
        KeyVaultClient(
            vault: try VaultEndpoint.resolve("contoso-kv", cloud: .publicCloud), credential: StaticCredential(),
            http: self)
    }

    func execute(_ request: HTTPRequest, body: [UInt8]?, timeout: Duration?) async throws(HTTPTransportError)
        -> HTTPClientResponse
    {
        guard request.headerFields[.authorization] != nil else {
            let challenge =
                #"Bearer authorization="https://login.microsoftonline.com/tenant-a", resource="https://vault.azure.net""#
            return HTTPClientResponse(
                head: HTTPResponse(status: .unauthorized, headerFields: [.wwwAuthenticate: challenge]), body: [])
        }
        let index = sent.withLock { sent in
            sent.append(request.path ?? "")
            return sent.count - 1
        }
        return HTTPClientResponse(
            head: HTTPResponse(status: .ok), body: Array((index < pages.count ? pages[index] : #"{"value":[]}"#).utf8))
    }
}

private struct StaticCredential: TokenCredential {
    var name: String { "StaticCredential" }

    func getToken(_ context: TokenRequestContext) async throws(CredentialError) -> AccessToken {
        AccessToken(token: "token", expiresOn: Date() + 3600, issuedAt: Date())
    }
}
