extension Seed {
    /// The built-in demo: one open vault, `demo`, with secrets (one with two versions, one
    /// disabled), RSA and EC keys, a self-signed PKCS#12 certificate and a PEM certificate with a
    /// leaf, intermediate and root chain.
    public static var demo: Seed {
        Seed(
            identities: [
                SeedIdentity(
                    name: "demo-app", type: .servicePrincipal, clientId: "6f1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"),
                SeedIdentity(name: "demo-node", type: .managedIdentity, systemAssigned: true),
                SeedIdentity(
                    name: "demo-workload", type: .managedIdentity, clientId: "0a1b2c3d-4e5f-4061-8273-94a5b6c7d8e9"),
            ],
            vaults: [
                SeedVault(
                    name: "demo",
                    secrets: [
                        SeedSecret(
                            name: "database-password",
                            versions: [
                                SeedSecretVersion(value: "initial-password-1", contentType: "text/plain"),
                                SeedSecretVersion(value: "correct-horse-battery-staple", contentType: "text/plain"),
                            ]
                        ),
                        SeedSecret(
                            name: "api-key", value: "demo-api-key-8c2f5e", contentType: "text/plain",
                            tags: ["team": "payments"]),
                        SeedSecret(
                            name: "app-settings", value: #"{"featureFlags":{"newCheckout":true},"maxConnections":20}"#,
                            contentType: "application/json"),
                        SeedSecret(name: "retired-token", value: "no-longer-used", enabled: false),
                    ],
                    keys: [
                        SeedKey(name: "signing-key", keyType: "RSA", size: 2048),
                        SeedKey(name: "ec-signing-key", keyType: "EC", curve: "P-256"),
                    ],
                    certificates: [
                        SeedCertificate(
                            name: "web-tls", subject: "CN=web.demo.example", dnsNames: ["web.demo.example"]),
                        SeedCertificate(
                            name: "api-tls",
                            subject: "CN=api.demo.example",
                            dnsNames: ["api.demo.example"],
                            contentType: "application/x-pem-file",
                            keyType: "EC",
                            curve: "P-256",
                            chain: 3
                        ),
                    ]
                )
            ]
        )
    }
}
