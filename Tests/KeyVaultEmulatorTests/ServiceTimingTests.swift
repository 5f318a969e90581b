import EmulatorSupport
import Foundation
import HTTPTypes
import KeyVaultEmulator
import Synchronization
import TestSupport
import Testing

@Suite("Emulator: the service's timing (slow deletes and recoveries, throttling, empty middle pages)")
struct ServiceTimingTests {
    @Test("A delete and a recovery take their window: 404 for what is not there yet, 409 for what would collide")
    func deleteAndRecoverWindows() async throws {
        let seed = Seed(vaults: [SeedVault(name: "slow", timing: VaultTiming(deleteSeconds: 30, recoverSeconds: 30))])
        // The emulator's clock, stopped: windows move only when the test says so, however slowly
        // the machine answers.
        let clock = ManualClock()
        let stopped: (inout KeyVaultEmulator.Configuration) -> Void = { $0.clock = { clock.date } }
        try await withEmulator(seed: seed, configure: stopped) { (harness) async throws in
            let token = try await harness.token()
            #expect(
                try await harness.keyVault(.put, "slow", "/secrets/s1", token: token, json: ["value": "v1"]).status
                    == 200)
            #expect(try await harness.keyVault(.delete, "slow", "/secrets/s1", token: token).status == 200)

            let deleting = try await harness.keyVault(.get, "slow", "/deletedsecrets/s1", token: token)
            #expect(deleting.status == 404, "not in the deleted objects until the delete completes")
            for (method, path) in [
                (HTTPRequest.Method.post, "/deletedsecrets/s1/recover"), (.delete, "/deletedsecrets/s1"),
            ] {
                let refused = try await harness.keyVault(method, "slow", path, token: token)
                #expect(
                    refused.status == 409 && refused.innerErrorCode == "ObjectIsBeingDeleted",
                    "\(path): \(refused.text)")
            }
            let write = try await harness.keyVault(.put, "slow", "/secrets/s1", token: token, json: ["value": "v2"])
            #expect(write.status == 409 && write.innerErrorCode == "ObjectIsBeingDeleted")
            let other = try await harness.keyVault(.put, "slow", "/secrets/other", token: token, json: ["value": "v"])
            #expect(other.status == 200, "only the object being deleted is affected")

            clock.advance(by: .seconds(29))
            #expect(
                try await harness.keyVault(.get, "slow", "/deletedsecrets/s1", token: token).status == 404,
                "29 s into a 30 s delete")
            clock.advance(by: .seconds(1))
            #expect(try await harness.keyVault(.get, "slow", "/deletedsecrets/s1", token: token).status == 200)
            #expect(try await harness.keyVault(.post, "slow", "/deletedsecrets/s1/recover", token: token).status == 200)

            #expect(
                try await harness.keyVault(.get, "slow", "/secrets/s1", token: token).status == 404,
                "not back until the recovery completes")
            let early = try await harness.keyVault(.delete, "slow", "/secrets/s1", token: token)
            #expect(early.status == 409 && early.innerErrorCode == "ObjectIsBeingRecovered")
            clock.advance(by: .seconds(30))
            #expect(
                try await harness.keyVault(.get, "slow", "/secrets/s1", token: token).json["value"] as? String == "v1")
        }
    }

    @Test("Throttling is a token bucket per vault and operation class, answered with 429 and Retry-After")
    func throttling() async throws {
        // 4,000 reads and 300 secret writes per 10 s, scaled to 4 and 1.
        let seed = Seed(vaults: [
            SeedVault(
                name: "busy", secrets: [SeedSecret(name: "s", value: "v")], timing: VaultTiming(throttleScale: 0.001)),
            SeedVault(name: "calm"),
        ])
        let clock = ManualClock()
        let stopped: (inout KeyVaultEmulator.Configuration) -> Void = { $0.clock = { clock.date } }
        try await withEmulator(seed: seed, configure: stopped) { (harness) async throws in
            let token = try await harness.token()
            for _ in 0..<4 {
                #expect(try await harness.keyVault(.get, "busy", "/secrets/s", token: token).status == 200)
            }
            let throttled = try await harness.keyVault(.get, "busy", "/secrets/s", token: token)
            #expect(throttled.status == 429)
            #expect(throttled.errorCode == "Throttled")
            let retryAfter = try #require(throttled.headers[.retryAfter].flatMap { Int($0) })
            #expect(retryAfter == 3, "one read comes back every 2.5 s")
            #expect(throttled.headers[HTTPField.Name("x-ms-request-id")!] != nil)

            #expect(
                try await harness.keyVault(.put, "busy", "/secrets/w", token: token, json: ["value": "1"]).status
                    == 200, "writes have their own bucket")
            #expect(
                try await harness.keyVault(.put, "busy", "/secrets/w", token: token, json: ["value": "2"]).status == 429
            )
            #expect(
                try await harness.keyVault(.get, "calm", "/secrets/s", token: token).status == 404,
                "other vaults are not throttled")

            clock.advance(by: .seconds(2))
            #expect(try await harness.keyVault(.get, "busy", "/secrets/s", token: token).status == 429, "not yet")
            clock.advance(by: .seconds(retryAfter))
            #expect(
                try await harness.keyVault(.get, "busy", "/secrets/s", token: token).status == 200,
                "Retry-After is long enough")
        }
    }

    @Test("With empty middle pages, every page that has a next one is followed by an empty page with a nextLink")
    func emptyMiddlePages() async throws {
        let secrets = (1...5).map { SeedSecret(name: "s\($0)", value: "v") }
        let seed = Seed(vaults: [
            SeedVault(name: "pages", secrets: secrets, timing: VaultTiming(emptyMiddlePages: true))
        ])
        try await withEmulator(seed: seed) { (harness) async throws in
            let token = try await harness.token()
            var url: String? = harness.vaultURL("pages", "/secrets?maxresults=2")
            var sizes: [Int] = []
            var names: [String] = []
            while let next = url, sizes.count < 20 {
                let page = try await harness.sendJSON(.get, next, token: token)
                #expect(page.status == 200, "\(page.text)")
                let items = page.json["value"] as? [[String: Any]] ?? []
                sizes.append(items.count)
                names += items.compactMap { ($0["id"] as? String)?.split(separator: "/").last.map(String.init) }
                url = page.json["nextLink"] as? String
            }
            #expect(sizes == [2, 0, 2, 0, 1])
            #expect(names == ["s1", "s2", "s3", "s4", "s5"])
        }
    }

    @Test("Timing is set and read per vault through the admin API; bad values are refused")
    func adminAndSeed() async throws {
        try await withEmulator { (harness) async throws in
            let url = "\(harness.endpoints.authorityHost)/_emulator/vaults/tuned/timing"
            let initial = try await harness.sendJSON(.get, url, token: nil)
            #expect(initial.json["throttleScale"] as? Double == 0 && initial.json["emptyMiddlePages"] as? Bool == false)
            let set = try await harness.sendJSON(
                .put, url, token: nil, json: ["deleteSeconds": 2, "throttleScale": 0.5])
            #expect(set.status == 200)
            #expect(
                set.json["deleteSeconds"] as? Double == 2 && set.json["throttleScale"] as? Double == 0.5
                    && set.json["recoverSeconds"] as? Double == 0)
            let bad = try await harness.sendJSON(.put, url, token: nil, json: ["throttleScale": 50])
            #expect(bad.status == 400 && bad.text.contains("throttleScale must be between 0 (off) and 10"))
            let unknown = try await harness.sendJSON(.put, url, token: nil, json: ["deleteSecs": 2])
            #expect(unknown.status == 400 && unknown.text.contains("deleteSecs"))
        }
    }
}
