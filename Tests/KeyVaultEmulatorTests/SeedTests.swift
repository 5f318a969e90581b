import EmulatorSupport
import Foundation
import HTTPTypes
import KeyVaultEmulator
import Testing

@Suite("Emulator: seed files")
struct SeedTests {
    @Test("A full seed file parses")
    func parses() throws {
        let json = """
            {
              "tenantId": "11111111-2222-3333-4444-555555555555",
              "allowUnknownIdentities": false,
              "identities": [
                {"name": "app", "type": "servicePrincipal", "clientId": "c1", "clientSecret": "s"},
                {"name": "vm", "type": "managedIdentity", "systemAssigned": true}
              ],
              "vaults": [
                {"name": "team-a",
                 "access": [{"identity": "app", "secrets": ["get", "list"]}],
                 "secrets": [{"name": "one", "value": "1"}, {"name": "two", "versions": [{"value": "a"}, {"value": "b", "enabled": false}]}],
                 "keys": [{"name": "k", "kty": "EC", "curve": "P-384"}],
                 "certificates": [{"name": "c", "subject": "CN=c", "contentType": "pem", "chain": 2}]}
              ]
            }
            """
        let seed = try Seed.parse(Data(json.utf8))
        #expect(seed.identities.count == 2)
        #expect(seed.vaults[0].secrets[1].versions.count == 2)
        #expect(seed.vaults[0].certificates[0].contentType == "application/x-pem-file")
    }

    @Test(
        "Bad seeds are refused with the place and the problem",
        arguments: [
            (
                #"{"vaults": [{"name": "ok-vault", "secrets": [{"name": "s", "valu": "x"}]}]}"#,
                "vaults[0].secrets[0].valu: unknown field 'valu'"
            ),
            (#"{"vaults": [{"name": "x"}]}"#, "invalid vault name"),
            (
                #"{"vaults": [{"name": "good-name", "timing": {"recoverSeconds": -1}}]}"#,
                "vaults['good-name'].timing: recoverSeconds must be between 0 and 3600"
            ),
            (#"{"vaults": [{"name": "good-name", "timing": {"throttle": 1}}]}"#, "unknown field 'throttle'"),
            (
                #"{"vaults": [{"name": "good-name", "secrets": [{"name": "bad_name", "value": "x"}]}]}"#,
                "invalid secret name 'bad_name'"
            ),
            (#"{"vaults": [{"name": "good-name", "secrets": [{"name": "s"}]}]}"#, "needs exactly one of 'value'"),
            (#"{"tenantId": "not-a-guid"}"#, "is not a GUID"),
            (#"{"identities": [{"name": "a", "type": "robot"}]}"#, "unknown identity type 'robot'"),
            (#"{"vaults": [{"name": "good-name", "keys": [{"name": "k", "kty": "DSA"}]}]}"#, "kty 'DSA'"),
            (
                #"{"vaults": [{"name": "good-name", "secrets": [{"name": "c", "value": "x"}], "certificates": [{"name": "c", "subject": "CN=c"}]}]}"#,
                "cannot share its name"
            ),
            (#"[1, 2]"#, "top level"),
            (#"{"tokenLifetimeSeconds": 5}"#, "tokenLifetimeSeconds"),
        ])
    func refused(json: String, expected: String) throws {
        #expect {
            _ = try Seed.parse(Data(json.utf8), path: "bad.json")
        } throws: { error in
            let text = "\(error)"
            return text.hasPrefix("seed file bad.json: ") && text.contains(expected)
        }
    }

    @Test("An access rule naming an unknown identity or permission stops the emulator from starting")
    func badAccessRules() async throws {
        for (rule, expected) in [
            (SeedAccessRule(identity: "ghost", secrets: ["get"]), "identity 'ghost' is not defined"),
            (SeedAccessRule(identity: "app", secrets: ["read"]), "unknown permission 'read'"),
        ] {
            let seed = Seed(
                identities: [SeedIdentity(name: "app", type: .servicePrincipal)],
                vaults: [SeedVault(name: "locked", access: [rule])]
            )
            await #expect {
                _ = try await EmulatorHarness.start(seed: seed)
            } throws: { error in
                "\(error)".contains(expected)
            }
        }
    }
}
