import AzureIdentity
import Dispatch
import FoundationEssentials
import HTTPTransport
import HTTPTypes
import KeyVault
import PKI
import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

extension FuzzTarget {
    static let keyVaultTargets = [
        FuzzTarget(
            name: "kv-page", summary: "a list page (secrets, keys, certificates) and the client following its nextLink",
            run: checkPage),
        FuzzTarget(
            name: "kv-bundle", summary: "a secret, key or certificate bundle, rendered as akvfs serves it",
            run: checkBundle),
        FuzzTarget(
            name: "kv-error", summary: "status line, WWW-Authenticate challenge, then error body, answered to a get",
            run: checkErrorAnswer),
        FuzzTarget(name: "cloud-env", summary: "an Azure Stack cloud environment file", run: checkCloudEnvironment),
    ]
}

// MARK: - Pages

@Sendable
private func checkPage(_ input: [UInt8]) throws(InvariantFailure) {
    // The link read ahead agrees with the page's own whenever both readings work, unless the page
    // may name nextLink twice (JSON leaves duplicate names undefined; an escape can spell one):
    // then the listing must fail rather than follow either reading.
    let scanned = PageLink.scan(input)
    let decoded = try? JSONDecoder().decode(PageLink.self, from: Data(input))
    let mayRepeatLink =
        input.ranges(of: Array(#""nextLink""#.utf8)).count > 1 || !input.ranges(of: Array(#"\u"#.utf8)).isEmpty
    let readingsDiffer = scanned != nil && decoded != nil && scanned?.link != decoded?.link
    try require(
        !readingsDiffer || mayRepeatLink,
        "scan read \(scanned?.link ?? "no link"), the page holds \(decoded?.link ?? "none")")

    // The client's Page: JSONDecoder checks only the members a type reads, so nextLink must be here too.
    struct Page<Item: Decodable>: Decodable {
        var value: [Item]?
        var nextLink: String?
    }
    let secrets = try? JSONDecoder().decode(Page<SecretItem>.self, from: Data(input))
    let keys = try? JSONDecoder().decode(Page<KeyItem>.self, from: Data(input))
    let certificates = try? JSONDecoder().decode(Page<CertificateItem>.self, from: Data(input))
    let ids =
        (secrets?.value?.map(\.id) ?? []) + (keys?.value?.map(\.kid) ?? []) + (certificates?.value?.map(\.id) ?? [])
    for id in ids {
        guard let identifier = ObjectIdentifier(id) else { continue }
        for part in [identifier.collection, identifier.name] + (identifier.version.map { [$0] } ?? []) {
            try require(!part.isEmpty && !part.contains("/"), "id \(id) gave the path segment '\(part)'")
        }
    }

    // The client's listing: this page, then an empty last page for a link it follows.
    let vault = ScriptedVault(challenge: ScriptedVault.challenge) { index in
        (200, index == 0 ? input : Array(#"{"value":[]}"#.utf8))
    }
    let outcome = blocking { () async throws(KeyVaultError) in try await vault.client().listSecrets() }
    let requests = vault.requests
    let link = decoded?.link
    switch outcome {
    case .success(let items):
        try require(!readingsDiffer, "the listing followed one of two readings of a page's nextLink")
        try require(
            items.count == secrets.map { $0.value?.count ?? 0 },
            "the listing returned \(items.count) items of a page that does not decode")
        try require(
            requests.count == (link == nil ? 1 : 2),
            "\(requests.count) requests for a page linking to \(link ?? "nothing")")
    case .failure(let error):
        try require(error.kind == .invalidResponse, "a page failed the listing with \(error.kind)")
        // An absolute URL as URLComponents reads it without re-encoding anything.
        let linkIsURL =
            link.map { link in
                URLComponents(string: link).map { $0.scheme != nil && $0.host != nil && $0.string == link } ?? false
            } ?? true
        try require(
            secrets == nil || !linkIsURL || readingsDiffer, "a page that decodes failed the listing: \(error.detail)")
    }
    // With two readings the client may have sent the read-ahead request for the scanned one before
    // the decoded page showed the other (then it fails the listing, as required above).
    if requests.count == 2, !readingsDiffer, let link { try checkNextRequest(requests[1], link: link) }
}

/// The request for a page's `link`: its path and query on this vault, with the client's api-version
/// instead of the link's, exactly as a URL parser reads the link.
private func checkNextRequest(_ target: String, link: String) throws(InvariantFailure) {
    try require(
        !target.utf8.contains { $0 <= 0x20 || $0 >= 0x7F },
        "the next request's target is no URL: \(target.debugDescription)")
    func items(_ query: Substring) -> [Substring] {
        query.split(separator: "&").filter { !$0.hasPrefix("api-version=") && $0 != "api-version" }
    }
    let (path, query) =
        target.firstIndex(of: "?").map { (target[..<$0], target[target.index(after: $0)...]) } ?? (target[...], "")
    try require(
        query.hasPrefix("api-version=7.6") && items(query).count == query.split(separator: "&").count - 1,
        "api-version in \(target)")
    // Compared only for links URLComponents takes as they are: it re-encodes what is malformed (a
    // stray '%'), which the client leaves to the server. A fragment is never sent: libcurl drops it.
    guard !link.contains("#"), let url = URLComponents(string: link), url.scheme != nil, url.host != nil,
        url.string == link
    else { return }
    let expectedPath = url.percentEncodedPath.isEmpty ? "/" : url.percentEncodedPath
    try require(path == expectedPath, "the link's path is \(expectedPath), the request's \(path)")
    try require(items(query) == items(Substring(url.percentEncodedQuery ?? "")), "the link's query became \(query)")
}

// MARK: - Bundles

@Sendable
private func checkBundle(_ input: [UInt8]) throws(InvariantFailure) {
    let data = Data(input)
    if let secret = try? JSONDecoder().decode(SecretBundle.self, from: data) {
        _ = secret.version
        if let value = secret.value {
            try checkSecretRendering(
                value: value, contentType: secret.contentType, certificateBacked: secret.isCertificateBacked)
        }
    }
    if let key = try? JSONDecoder().decode(KeyBundle.self, from: data) {
        _ = key.version
        try checkKeyRendering(key.key.publicOnly)
    }
    if let certificate = try? JSONDecoder().decode(CertificateBundle.self, from: data) {
        _ = certificate.version
        if let der = certificate.certificateDER { try checkCertificateRendering(der) }
    }
}

// MARK: - Errors and challenges

@Sendable
private func checkErrorAnswer(_ input: [UInt8]) throws(InvariantFailure) {
    let lines = input.split(separator: UInt8(ascii: "\n"), maxSplits: 2, omittingEmptySubsequences: false)
    let status = min(max(Int(text(Array(lines[0])).filter(\.isNumber).prefix(3)) ?? 500, 100), 599)
    // As the client receives it: HTTP field values have no NUL, CR or LF.
    let header = HTTPField(name: .wwwAuthenticate, value: lines.count > 1 ? text(Array(lines[1])) : "").value
    let body = lines.count > 2 ? Array(lines[2]) : []

    let challenge = AuthenticationChallenge.parse(header)
    if let challenge {
        try require(!challenge.scope.isEmpty, "a challenge with an empty scope")
        if let tenant = challenge.tenantId {
            try require(!tenant.isEmpty && !tenant.contains("/"), "tenant '\(tenant)'")
        }
    }

    let vault = ScriptedVault(challenge: header) { _ in (status, body) }
    let outcome = blocking { () async throws(KeyVaultError) in try await vault.client().getSecret("fuzz-secret") }
    guard case .failure(let error) = outcome else {
        try require(
            challenge != nil && (200...299).contains(status), "a get succeeded with \(status) after challenge \(header)"
        )
        return
    }
    try require(!error.description.contains(FixedCredential.token), "the access token appears in: \(error.description)")
    if challenge == nil {
        try require(error.kind == .unauthorized, "a get without a usable challenge failed with \(error.kind)")
    } else if !(challenge!.isResource(of: ScriptedVault.endpoint)) {
        try require(error.kind == .challengeRejected, "a challenge for another resource failed with \(error.kind)")
    } else if (200...299).contains(status) {
        try require(error.kind == .invalidResponse, "an undecodable bundle failed with \(error.kind)")
    } else {
        try require(
            error.status == status, "status \(status) was reported as \(error.status.map(String.init) ?? "none")")
    }
}

// MARK: - Cloud environment files

/// One file per process, rewritten for each input: AzureCloud reads environment files by path.
private let environmentFile = "/tmp/akvfs-fuzz-\(getpid())-cloud.json"
private let removeEnvironmentFileAtExit: Void = {
    atexit { unlink("/tmp/akvfs-fuzz-\(getpid())-cloud.json") }
}()

@Sendable
private func checkCloudEnvironment(_ input: [UInt8]) throws(InvariantFailure) {
    _ = removeEnvironmentFileAtExit
    guard FileManager.default.createFile(atPath: environmentFile, contents: Data(input)) else {
        throw InvariantFailure(message: "cannot write \(environmentFile)")
    }
    guard let cloud = try? AzureCloud.load(environmentFile: environmentFile) else { return }
    for (field, url) in [
        ("activeDirectoryEndpoint", cloud.authorityHost), ("keyVaultEndpoint", cloud.keyVaultResource),
    ] {
        try require(url.hasPrefix("https://") && !url.hasSuffix("/"), "\(field) became \(url)")
    }
    try require(
        !cloud.keyVaultDNSSuffix.isEmpty && !cloud.keyVaultDNSSuffix.hasPrefix("."),
        "keyVaultDNSSuffix became '\(cloud.keyVaultDNSSuffix)'")
    let resolved = try? AzureCloud.resolve(name: AzureCloud.stackCloudName, environmentFile: environmentFile)
    try require(resolved == cloud, "resolving AzureStackCloud reads the file differently")
    // A vault in this cloud is an https URL with a host and nothing else, like a URL given directly.
    guard let endpoint = try? VaultEndpoint.resolve("fuzzvault", cloud: cloud) else {
        throw InvariantFailure(message: "no vault URL in cloud with suffix \(cloud.keyVaultDNSSuffix)")
    }
    try require(
        !endpoint.authority.utf8.contains { $0 <= 0x20 || $0 == 0x7F || Array("/?#@\\".utf8).contains($0) },
        "the vault's authority is \(endpoint.authority.debugDescription)")
}

// MARK: - A vault answering from the input

/// Answers unauthenticated requests with a 401 and `challenge`, and the n-th authenticated
/// request with `answer(n)`; records the authenticated requests' targets.
final class ScriptedVault: HTTPClient {
    static let challenge =
        #"Bearer authorization="https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47", resource="https://vault.azure.net""#
    static let endpoint: VaultEndpoint = {
        do {
            return try VaultEndpoint.resolve("fuzzvault", cloud: .publicCloud)
        } catch {
            preconditionFailure("fuzzvault is a valid vault name")
        }
    }()

    private let header: String
    private let answer: @Sendable (Int) -> (status: Int, body: [UInt8])
    private let log = Mutex<[String]>([])

    init(challenge: String, answer: @escaping @Sendable (Int) -> (status: Int, body: [UInt8])) {
        self.header = challenge
        self.answer = answer
    }

    var requests: [String] { log.withLock { $0 } }

    func client() -> KeyVaultClient {
        var options = KeyVaultClientOptions()
        options.retry.maxRetries = 0  // no backoff sleeps
        return KeyVaultClient(vault: Self.endpoint, credential: FixedCredential(), http: self, options: options)
    }

    func execute(_ request: HTTPRequest, body: [UInt8]?, timeout: Duration?) async throws(HTTPTransportError)
        -> HTTPClientResponse
    {
        guard request.headerFields[.authorization] != nil else {
            return HTTPClientResponse(
                head: HTTPResponse(status: .unauthorized, headerFields: [.wwwAuthenticate: header]), body: [])
        }
        let index = log.withLock { log in
            log.append(request.path ?? "")
            return log.count - 1
        }
        let (status, body) = answer(index)
        return HTTPClientResponse(head: HTTPResponse(status: .init(code: status)), body: body)
    }
}

struct FixedCredential: TokenCredential {
    static let token = "fuzz-access-token-f00dfeedf00dfeed"
    var name: String { "FixedCredential" }

    func getToken(_ context: TokenRequestContext) async throws(CredentialError) -> AccessToken {
        AccessToken(token: Self.token, expiresOn: Date() + 3600, issuedAt: Date())
    }
}

/// Runs an async call to completion from the fuzzer's synchronous callback.
func blocking<T: Sendable, Failure: Error>(_ call: @escaping @Sendable () async throws(Failure) -> T) -> Result<
    T, Failure
> {
    let outcome = Outcome<Result<T, Failure>>()
    Task {
        do throws(Failure) {
            outcome.set(.success(try await call()))
        } catch {
            outcome.set(.failure(error))
        }
    }
    return outcome.wait()
}

/// A value set once by a task and waited for by a thread.
private final class Outcome<Value: Sendable>: Sendable {
    private let value = Mutex<Value?>(nil)
    private let done = DispatchSemaphore(value: 0)

    func set(_ newValue: Value) {
        value.withLock { $0 = newValue }
        done.signal()
    }

    func wait() -> Value {
        done.wait()
        return value.withLock { $0! }
    }
}
