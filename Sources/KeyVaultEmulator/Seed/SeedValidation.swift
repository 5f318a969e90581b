extension Seed {
    /// Checks what JSON decoding cannot: names, ranges, references and conflicts.
    func validate(path: String) throws(SeedError) {
        func fail(_ problem: String) -> SeedError { SeedError(path: path, problem: problem) }

        guard Self.isGUID(tenantId) else {
            throw fail("tenantId '\(tenantId)' is not a GUID (e.g. \(Seed.defaultTenantId))")
        }
        guard (60...604_800).contains(tokenLifetimeSeconds) else {
            throw fail("tokenLifetimeSeconds must be between 60 and 604800; got \(tokenLifetimeSeconds)")
        }

        var identityNames = Set<String>()
        var systemAssignedCount = 0
        for (index, identity) in identities.enumerated() {
            let place = "identities[\(index)] '\(identity.name)'"
            guard !identity.name.isEmpty else { throw fail("identities[\(index)]: name must not be empty") }
            guard identityNames.insert(identity.name.lowercased()).inserted else {
                throw fail("\(place): duplicate identity name")
            }
            switch identity.type {
            case .servicePrincipal:
                if identity.systemAssigned != nil || identity.resourceId != nil {
                    throw fail("\(place): systemAssigned and resourceId are for managed identities only")
                }
            case .managedIdentity:
                if identity.clientSecret != nil || identity.certificate != nil || identity.federatedSubjects != nil {
                    throw fail(
                        "\(place): clientSecret, certificate and federatedSubjects are for service principals only")
                }
                if identity.systemAssigned == true {
                    systemAssignedCount += 1
                    if identity.resourceId != nil {
                        throw fail("\(place): a system-assigned identity has no resourceId")
                    }
                }
            }
        }
        guard systemAssignedCount <= 1 else { throw fail("at most one identity may be systemAssigned") }

        var vaultNames = Set<String>()
        for vault in vaults {
            let place = "vaults['\(vault.name)']"
            guard Identifiers.isValidVaultName(vault.name) else {
                throw fail("\(place): invalid vault name; vault names are \(Identifiers.vaultNameRule)")
            }
            guard vaultNames.insert(vault.name.lowercased()).inserted else {
                throw fail("\(place): duplicate vault name")
            }
            if let problem = vault.timing?.problem { throw fail("\(place).timing: \(problem)") }
            var secretNames = Set<String>()
            var keyNames = Set<String>()
            var certificateNames = Set<String>()
            for secret in vault.secrets {
                try checkName(secret.name, kind: "secret", in: &secretNames, place: place, fail: fail)
            }
            for key in vault.keys {
                try checkName(key.name, kind: "key", in: &keyNames, place: place, fail: fail)
                guard ["RSA", "RSA-HSM", "EC", "EC-HSM"].contains(key.keyType) else {
                    throw fail(
                        "\(place).keys['\(key.name)']: kty '\(key.keyType)' is not one of RSA, RSA-HSM, EC, EC-HSM")
                }
            }
            for certificate in vault.certificates {
                let certificatePlace = "\(place).certificates['\(certificate.name)']"
                try checkName(certificate.name, kind: "certificate", in: &certificateNames, place: place, fail: fail)
                if secretNames.contains(certificate.name.lowercased())
                    || keyNames.contains(certificate.name.lowercased())
                {
                    throw fail(
                        "\(certificatePlace): a certificate creates a key and a secret of the same name, so it cannot share its name with a seeded key or secret"
                    )
                }
                guard (1...3).contains(certificate.chain) else {
                    throw fail("\(certificatePlace): chain must be 1 (self-signed), 2 or 3")
                }
                guard (1...10).contains(certificate.versions) else {
                    throw fail("\(certificatePlace): versions must be between 1 and 10")
                }
                guard (1...1200).contains(certificate.validityMonths) else {
                    throw fail("\(certificatePlace): validityMonths must be between 1 and 1200")
                }
                guard certificate.subject != nil || !certificate.dnsNames.isEmpty else {
                    throw fail("\(certificatePlace): needs a subject or at least one entry in dnsNames")
                }
            }
        }
    }

    private func checkName(
        _ name: String,
        kind: String,
        in names: inout Set<String>,
        place: String,
        fail: (String) -> SeedError
    ) throws(SeedError) {
        guard Identifiers.isValidObjectName(name) else {
            throw fail("\(place): invalid \(kind) name '\(name)'; names are \(Identifiers.objectNameRule)")
        }
        guard names.insert(name.lowercased()).inserted else { throw fail("\(place): duplicate \(kind) name '\(name)'") }
    }

    static func isGUID(_ text: String) -> Bool {
        let groups = text.split(separator: "-", omittingEmptySubsequences: false)
        guard groups.map(\.count) == [8, 4, 4, 4, 12] else { return false }
        return groups.allSatisfy { $0.allSatisfy(\.isHexDigit) }
    }
}
