import AzureIdentity
import EmulatorSupport
import Foundation
import KeyVaultEmulator
import TestSupport
import Testing

@Suite("Token caching against the emulator")
struct CachingCredentialTests {
    @Test("Tokens are refreshed ahead of expiry in the background, once, while the old one keeps working")
    func tokenRefresh() async throws {
        try await withEmulator(
            seed: Seed(
                tokenLifetimeSeconds: 3600,
                vaults: [SeedVault(name: "demo", secrets: [SeedSecret(name: "s", value: "v")])])
        ) { (harness) async throws in
            let clock = ManualClock()
            let credential = CachingCredential(
                ClientSecretCredential(
                    authority: harness.authority, clientId: "aaaa0000-0000-4000-8000-000000000009", secret: "x",
                    http: harness.http, now: { clock.date }),
                now: { clock.date })
            let context = TokenRequestContext(scope: "\(harness.endpoints.resource)/.default")
            let first = try await credential.getToken(context)
            #expect(first.refreshOn == first.expiresOn.addingTimeInterval(-300))
            clock.advance(by: .seconds(3000))
            let unchanged = try await credential.getToken(context).token == first.token
            #expect(unchanged, "not due yet")
            #expect(await harness.tokenRequests().count == 1)
            clock.advance(by: .seconds(301))
            // Tokens are compared, never printed: a failed expectation would show them.
            let during = try await credential.getToken(context)
            let servedOld = during.token == first.token
            #expect(servedOld, "the still-valid token is served while the refresh runs")
            var replaced = false
            for _ in 0..<100 where !replaced {
                try await Task.sleep(for: .milliseconds(20))
                replaced = try await credential.getToken(context).token != first.token
            }
            #expect(replaced, "the refreshed token replaces the old one")
            #expect(await harness.tokenRequests().count == 2, "exactly one refresh")
        }
    }
}
