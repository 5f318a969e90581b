import EmulatorSupport
import Foundation
import HTTPTransport
import HTTPTypes
import KeyVaultEmulator
import Testing

@Suite("Emulator: fault injection and access rules")
struct FaultsAndAccessTests {
    @Test("The next N matching requests answer 429 (with and without Retry-After), then normal service resumes")
    func throttling() async throws {
        try await withEmulator { (harness) async throws in
            let token = try await harness.token()
            _ = try await harness.keyVault(.put, "faulty", "/secrets/s", token: token, json: ["value": "v"])
            await harness.emulator.inject(
                FaultRule(
                    method: "GET", vault: "faulty", pathPrefix: "/secrets/", count: 2,
                    action: .status(429, retryAfter: 3)))
            let first = try await harness.keyVault(.get, "faulty", "/secrets/s", token: token)
            #expect(first.status == 429)
            #expect(first.errorCode == "Throttled")
            #expect(first.headers[.retryAfter] == "3")
            // As from the service: a throttled answer still carries its request id and version.
            #expect(first.headers[HTTPField.Name("x-ms-request-id")!]?.isEmpty == false)
            #expect(first.headers[HTTPField.Name("x-ms-keyvault-service-version")!] != nil)
            // A request that does not match is untouched and does not use up the fault.
            #expect(try await harness.keyVault(.get, "faulty", "/keys", token: token).status == 200)
            #expect(try await harness.keyVault(.get, "faulty", "/secrets/s", token: token).status == 429)
            #expect(try await harness.keyVault(.get, "faulty", "/secrets/s", token: token).status == 200)

            let added = try await harness.sendJSON(
                .post, "\(harness.endpoints.adminURL)/faults", token: nil, json: ["vault": "faulty", "status": 429])
            #expect(added.status == 201)
            let noRetryAfter = try await harness.keyVault(.get, "faulty", "/secrets/s", token: token)
            #expect(noRetryAfter.status == 429)
            #expect(noRetryAfter.headers[.retryAfter] == nil)

            await harness.emulator.inject(FaultRule(count: 1, action: .status(503, retryAfter: nil)))
            let unavailable = try await harness.keyVault(.get, "faulty", "/secrets/s", token: token)
            #expect(unavailable.status == 503)
            let log = await harness.emulator.requests()
            #expect(log.filter { $0.fault != nil }.count == 4)
        }
    }

    @Test("Dropped connections and hung requests reach the client as transport errors")
    func dropAndHang() async throws {
        try await withEmulator { (harness) async throws in
            let token = try await harness.token()
            // A fresh client for each step: libcurl silently resends a request whose *reused*
            // connection dies, which would hide the drop from this test.
            let request = HTTPRequest(
                method: .get, scheme: "https", authority: "faulty.vault.localhost:\(harness.endpoints.port)",
                path: "/secrets?api-version=7.6",
                headerFields: [.authorization: "Bearer \(token.value)"])

            await harness.emulator.inject(FaultRule(vault: "faulty", action: .drop))
            let dropping = try CurlHTTPClient(trusting: harness.caFile)
            await #expect {
                _ = try await dropping.execute(request)
            } throws: { error in
                (error as? HTTPTransportError)?.kind == .connectionLost
            }
            dropping.shutdown()

            await harness.emulator.inject(FaultRule(vault: "faulty", action: .hang(seconds: 60)))
            let hanging = try CurlHTTPClient(trusting: harness.caFile)
            await #expect {
                _ = try await hanging.execute(request, body: nil, timeout: .milliseconds(500))
            } throws: { error in
                (error as? HTTPTransportError)?.kind == .timedOut
            }
            hanging.shutdown()

            let healthy = try CurlHTTPClient(trusting: harness.caFile)
            defer { healthy.shutdown() }
            #expect(try await healthy.execute(request).head.status.code == 200)
            let faults = await harness.emulator.requests().compactMap(\.fault)
            #expect(faults == ["drop", "hang"])
        }
    }

    @Test("Faults can be listed and cleared over HTTP; bad fault requests are explained")
    func faultAdmin() async throws {
        try await withEmulator { (harness) async throws in
            _ = try await harness.sendJSON(
                .post, "\(harness.endpoints.adminURL)/faults", token: nil,
                json: ["action": "drop", "pathPrefix": "/secrets"])
            let listed = try await harness.send(.get, "\(harness.endpoints.adminURL)/faults")
            #expect((listed.json["faults"] as? [[String: Any]])?.first?["action"] as? String == "drop")
            #expect(try await harness.send(.delete, "\(harness.endpoints.adminURL)/faults").status == 204)
            #expect(
                ((try await harness.send(.get, "\(harness.endpoints.adminURL)/faults")).json["faults"] as? [Any])?
                    .isEmpty == true)
            let bad = try await harness.sendJSON(
                .post, "\(harness.endpoints.adminURL)/faults", token: nil, json: ["action": "status", "status": 200])
            #expect(bad.status == 400)
            let typo = try await harness.sendJSON(
                .post, "\(harness.endpoints.adminURL)/faults", token: nil, json: ["stauts": 429])
            #expect(typo.status == 400)
            #expect((typo.json["error"] as? String)?.contains("stauts") == true)
            // Every admin body is read strictly, not only fault rules.
            for (method, path, json, misspelt) in [
                (HTTPRequest.Method.put, "latency", ["milisecond": 5] as [String: Any], "milisecond"),
                (
                    .post, "service-account-tokens", ["subject": "system:serviceaccount:a:b", "audeince": "x"],
                    "audeince"
                ),
            ] {
                let reply = try await harness.sendJSON(
                    method, "\(harness.endpoints.adminURL)/\(path)", token: nil, json: json)
                #expect(reply.status == 400, "\(path)")
                #expect((reply.json["error"] as? String)?.contains(misspelt) == true, "\(path): \(reply.text)")
            }
        }
    }

    @Test("Added latency delays answers")
    func latency() async throws {
        try await withEmulator { (harness) async throws in
            let token = try await harness.token()
            await harness.emulator.setLatency(milliseconds: 200)
            let clock = ContinuousClock()
            let start = clock.now
            #expect(try await harness.keyVault(.get, "slow", "/secrets", token: token).status == 200)
            // A lower bound only: a slow machine can only make this longer.
            #expect(clock.now - start >= .milliseconds(200))
        }
    }

    @Test("A vault with access rules answers 403 ForbiddenByRbac to what they do not grant")
    func accessRules() async throws {
        let seed = Seed(
            identities: [
                SeedIdentity(name: "reader", type: .servicePrincipal, clientId: "eeeeeeee-0000-4000-8000-000000000001"),
                SeedIdentity(name: "lister", type: .servicePrincipal, clientId: "eeeeeeee-0000-4000-8000-000000000002"),
            ],
            vaults: [
                SeedVault(
                    name: "locked",
                    access: [
                        SeedAccessRule(identity: "reader", secrets: ["get"]),
                        SeedAccessRule(identity: "lister", secrets: ["list"], certificates: ["all"]),
                    ],
                    secrets: [SeedSecret(name: "s", value: "v")]
                ),
                SeedVault(name: "open", secrets: [SeedSecret(name: "s", value: "v")]),
            ]
        )
        try await withEmulator(seed: seed) { (harness) async throws in
            let reader = try await harness.token(clientId: "eeeeeeee-0000-4000-8000-000000000001")
            let lister = try await harness.token(clientId: "eeeeeeee-0000-4000-8000-000000000002")
            let stranger = try await harness.token(clientId: "eeeeeeee-0000-4000-8000-000000000003")
            #expect(try await harness.keyVault(.get, "locked", "/secrets/s", token: reader).status == 200)
            let denied = try await harness.keyVault(.get, "locked", "/secrets", token: reader)
            #expect(denied.status == 403)
            #expect(denied.innerErrorCode == "ForbiddenByRbac")
            #expect(denied.errorMessage?.contains("appid=eeeeeeee-0000-4000-8000-000000000001") == true)
            #expect(try await harness.keyVault(.get, "locked", "/secrets", token: lister).status == 200)
            #expect(try await harness.keyVault(.get, "locked", "/secrets/s", token: lister).status == 403)
            #expect(try await harness.keyVault(.get, "locked", "/secrets/s", token: stranger).status == 403)
            #expect(
                try await harness.keyVault(.put, "locked", "/secrets/s", token: reader, json: ["value": "x"]).status
                    == 403)
            #expect(try await harness.keyVault(.get, "open", "/secrets/s", token: stranger).status == 200)
        }
    }
}
