import ObjectCache
import PKI
import Synchronization
import TestSupport
import Testing

final class Counter: Sendable {
    private let value = Mutex(0)
    func increment() { value.withLock { $0 += 1 } }
    var count: Int { value.withLock { $0 } }
}

/// A configuration on a hand-driven clock, with round numbers tests can reason about.
func testConfiguration(_ clock: ManualClock, _ adjust: (inout CacheConfiguration) -> Void = { _ in })
    -> CacheConfiguration
{
    var configuration = CacheConfiguration()
    configuration.now = { clock.now }
    configuration.sleep = { try await clock.sleep(for: $0) }
    configuration.ttl = .seconds(100)
    configuration.idleTimeout = .seconds(300)
    configuration.maxStaleness = .seconds(1_000)
    configuration.negativeTTL = .seconds(10)
    // Readers' fetch deadlines out of the way of tests that move time; tests of the deadline set it.
    configuration.fetchTimeout = .seconds(100_000)
    adjust(&configuration)
    return configuration
}

let vaultA = SourceID(vault: "https://vault-a.vault.azure.net", identity: "mi:node")
let vaultAOtherIdentity = SourceID(
    vault: "https://vault-a.vault.azure.net", identity: "wi:tenant:client:system:serviceaccount:app:reader")

func secret(_ name: String, version: String? = nil) -> ObjectReference {
    ObjectReference(kind: .secret, name: name, version: version)
}

/// Renders any payload as its UTF-8 text (secrets) or raw bytes.
let plainRender: @Sendable (FetchedObject) throws(ObjectCache.RenderError) -> ObjectCache.RenderedBytes = { object in
    switch object.payload {
    case .secret(let value): ObjectCache.RenderedBytes(bytes: value, warnings: [])
    case .certificate(let der): ObjectCache.RenderedBytes(bytes: SecretBytes(copying: der), warnings: [])
    case .key(let jwk): ObjectCache.RenderedBytes(bytes: SecretBytes(utf8: jwk.n ?? ""), warnings: [])
    }
}

extension ObjectCache {
    /// The content of a secret as text, rendered plainly.
    func text(_ reference: ObjectReference, in source: SourceID = vaultA) async throws(CacheError) -> String {
        let content = try await content(reference, in: source, renderingKey: "plain", render: plainRender)
        return String(decoding: content.bytes, as: UTF8.self)
    }
}

/// Waits (without asserting how long it takes) until a condition holds; records an issue if it
/// never does.
func waitUntil(_ what: String, _ condition: () async -> Bool) async {
    for _ in 0..<60_000 {
        if await condition() { return }
        try? await Task.sleep(for: .milliseconds(1))
    }
    Issue.record("gave up waiting until \(what)")
}
