import PKI

/// Puts a bag of certificates (as a PFX holds them, in no particular order) into chain order.
public enum CertificateChain {
    public enum Failure: Error, Equatable, CustomStringConvertible {
        case cycle
        case noLeaf

        /// The Azure provider's texts.
        public var description: String {
            switch self {
            case .cycle: "constructing chain resulted in cycle"
            case .noLeaf: "no leaf found"
            }
        }
    }

    /// Orders certificates leaf -> root, as the Azure provider's `fetchCertChains` does: link i -> j
    /// when AuthorityKeyIdentifier(i) == SubjectKeyIdentifier(j) (skipped when either is missing;
    /// never a certificate to itself; the first such j wins); the leaf is the first certificate that
    /// is nobody's parent; walk the parents. When the walk does not reach every certificate, returns
    /// the input order with `complete` false. No certificates at all is a complete, empty chain.
    public static func order(_ certificates: [Certificate]) throws(Failure) -> (
        certificates: [Certificate], complete: Bool
    ) {
        guard !certificates.isEmpty else { return ([], true) }
        let issuers = issuerIndices(certificates, matchingNamesToo: false)
        let parents = Set(issuers.compactMap { $0 })
        guard let leaf = certificates.indices.first(where: { !parents.contains($0) }) else { throw .noLeaf }
        var path: [Int] = []
        var next: Int? = leaf
        while let index = next {
            // A walk longer than the list must have gone round a loop.
            guard path.count < certificates.count else { throw .cycle }
            path.append(index)
            next = issuers[index]
        }
        guard path.count == certificates.count else { return (certificates, false) }
        return (path.map { certificates[$0] }, true)
    }

    /// `start`, then its issuer, that one's issuer and so on, as far as `certificates` has them.
    /// Stops before any certificate already on the path, so it cannot loop.
    static func issuerPath(from start: Int, in certificates: [Certificate]) -> [Int] {
        let issuers = issuerIndices(certificates, matchingNamesToo: true)
        var path = [start]
        while let last = path.last, let issuer = issuers[last], !path.contains(issuer) {
            path.append(issuer)
        }
        return path
    }

    /// For each certificate, the index of the first other certificate that issued it according to
    /// the key identifiers. With `matchingNamesToo`, a certificate that no key identifier links is
    /// matched by issuer name and signature instead (for key identifiers that are absent).
    private static func issuerIndices(_ certificates: [Certificate], matchingNamesToo: Bool) -> [Int?] {
        certificates.indices.map { child -> Int? in
            let certificate = certificates[child]
            if let authorityID = certificate.authorityKeyIdentifier, !authorityID.isEmpty,
                let issuer = certificates.indices.first(where: {
                    $0 != child && certificates[$0].subjectKeyIdentifier == authorityID
                })
            {
                return issuer
            }
            guard matchingNamesToo else { return nil }
            return certificates.indices.first { candidate in
                candidate != child && certificates[candidate].subject == certificate.issuer
                    && certificate.isIssued(by: certificates[candidate])
            }
        }
    }
}
