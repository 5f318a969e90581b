import ObjectFormats
import PKI
import Testing

@Suite struct CertificateChainTests {
    /// TestFetchCertChain.
    @Test func everyOrderOfAThreeCertificateChainComesOutLeafFirst() throws {
        let chain = try ServerChain.shared.get()
        let orders = permutations([chain.root, chain.intermediate, chain.server])
        #expect(orders.count == 6)
        for order in orders {
            let result = try CertificateChain.order(order)
            #expect(result.certificates == [chain.server, chain.intermediate, chain.root])
            #expect(result.complete)
        }
    }

    /// TestFetchCertChainWithLeafMissingSKI: the leaf links up by its authority key identifier alone.
    @Test func leafWithoutSubjectKeyIdentifier() throws {
        let leaf = try Certificate(pem: LeafWithoutSKIFixture.leaf)
        let intermediate2 = try Certificate(pem: LeafWithoutSKIFixture.intermediate2)
        let intermediate1 = try Certificate(pem: LeafWithoutSKIFixture.intermediate1)
        let root = try Certificate(pem: LeafWithoutSKIFixture.root)
        #expect(leaf.subjectKeyIdentifier == nil)
        #expect(leaf.authorityKeyIdentifier == intermediate2.subjectKeyIdentifier)

        let orders = permutations([leaf, intermediate2, intermediate1, root])
        #expect(orders.count == 24)  // the provider's test uses 12 of these
        for order in orders {
            let result = try CertificateChain.order(order)
            #expect(result.certificates == [leaf, intermediate2, intermediate1, root])
            #expect(result.complete)
        }
    }

    /// TestFetchCertChainWarning: with the intermediate missing, nothing links and the order is kept.
    @Test func missingIntermediateKeepsTheInputOrder() throws {
        let chain = try ServerChain.shared.get()
        for order in [[chain.server, chain.root], [chain.root, chain.server]] {
            let result = try CertificateChain.order(order)
            #expect(result.certificates == order)
            #expect(!result.complete)
        }
    }

    @Test func partialChainsWithoutTheRootAreComplete() throws {
        let chain = try ServerChain.shared.get()
        let result = try CertificateChain.order([chain.intermediate, chain.server])
        #expect(result.certificates == [chain.server, chain.intermediate])
        #expect(result.complete)
        #expect(try CertificateChain.order([chain.root]) == ([chain.root], true))
        #expect(try CertificateChain.order([]) == ([], true))
    }

    @Test func cyclesAreDetected() throws {
        let loop = try LoopChain()
        let cycle = #expect(throws: CertificateChain.Failure.self) {
            try CertificateChain.order([loop.leaf, loop.a, loop.b])
        }
        #expect(cycle == .cycle)
        #expect(cycle?.description == "constructing chain resulted in cycle")

        // Without the leaf, every certificate is somebody's parent.
        let noLeaf = #expect(throws: CertificateChain.Failure.self) { try CertificateChain.order([loop.b, loop.a]) }
        #expect(noLeaf == .noLeaf)
        #expect(noLeaf?.description == "no leaf found")
    }
}

/// Two CA certificates that name each other as issuer by key identifier, and a leaf under one of
/// them: `a` is key A issued by `b`, `b` is key B issued by a self-signed certificate of key A, so
/// AKI(a) = SKI(b) and AKI(b) = SKI(a) (subject key identifiers are hashes of the key).
struct LoopChain {
    let leafKey: PrivateKey
    let leaf: Certificate
    let a: Certificate
    let b: Certificate

    init() throws {
        let keyA = try PrivateKey.generate(.ec(.p256))
        let keyB = try PrivateKey.generate(.ec(.p256))
        leafKey = try PrivateKey.generate(.ec(.p256))
        let selfSignedA = try ServerChain.template("CN=A", ca: true).selfSigned(with: keyA)
        b = try ServerChain.template("CN=B", ca: true).issue(for: keyB.publicKey, issuer: selfSignedA, issuerKey: keyA)
        a = try ServerChain.template("CN=A", ca: true).issue(for: keyA.publicKey, issuer: b, issuerKey: keyB)
        leaf = try ServerChain.template("CN=looped.example", ca: false).issue(
            for: leafKey.publicKey, issuer: a, issuerKey: keyA)
        #expect(a.authorityKeyIdentifier == b.subjectKeyIdentifier)
        #expect(b.authorityKeyIdentifier == a.subjectKeyIdentifier)
    }
}
