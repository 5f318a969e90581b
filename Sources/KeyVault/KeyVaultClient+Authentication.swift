import AzureIdentity
import FoundationEssentials
import HTTPTransport
import HTTPTypes
import Synchronization

extension KeyVaultClient {
    /// The challenge learned from the vault, once a request has been made.
    public var currentChallenge: AuthenticationChallenge? { challenge.current }

    /// Learns the vault's challenge and gets a token for it without reading anything, so a mount
    /// can fail fast when the vault is unreachable or the identity cannot authenticate.
    public func authenticate() async throws(KeyVaultError) -> AccessToken {
        let operation = "authenticate"
        if let known = currentChallenge { return try await token(for: known, operation: operation) }
        let request = HTTPRequest(
            method: .get, scheme: "https", authority: vault.authority,
            path: "/secrets?api-version=\(options.apiVersion)&maxresults=1",
            headerFields: [.accept: "application/json"])
        let probe = try await retrying(operation: operation) { try await self.execute(request) }
        let status = probe.head.status.code
        if status == 401 {
            return try await token(for: try learnChallenge(from: probe, operation: operation), operation: operation)
        }
        let failure = error(from: probe, operation: operation)
        guard !Self.isRetryable(status) else { throw failure }
        throw KeyVaultError(
            kind: .invalidResponse, operation: operation, vault: vault.url, status: status,
            detail:
                "the vault answered an unauthenticated request with \(status) instead of asking for a token (\(failure.detail))"
        )
    }

    /// One exchange with the vault, authenticated: learns the challenge on first contact, and
    /// gets a fresh token once when the vault rejects a cached one.
    func authenticatedSend(_ request: HTTPRequest, operation: String) async throws -> HTTPClientResponse {
        var known = challenge.current
        if known == nil {
            switch try await firstContact(request, operation: operation) {
            case .answered(let response): return response
            case .learned(let learned): known = learned
            }
        }
        var current = known!
        var response = try await execute(request, token: try await token(for: current, operation: operation))
        if response.head.status.code == 401 {
            // A rejected token: the challenge may have changed (another tenant), or the token went stale.
            if response.head.headerFields[.wwwAuthenticate] != nil {
                current = try learnChallenge(from: response, operation: operation)
            }
            lastToken.withLock { $0 = nil }
            if let caching = credential as? CachingCredential {
                await caching.invalidate(TokenRequestContext(scope: current.scope, tenantId: current.tenantId))
            }
            response = try await execute(request, token: try await token(for: current, operation: operation))
        }
        return response
    }

    private enum FirstContact {
        case answered(HTTPClientResponse)
        case learned(AuthenticationChallenge)
    }

    /// No token is sent until the vault says which resource and tenant it wants. The first
    /// requests of a burst, up to `options.parallelFirstContacts`, each ask unauthenticated on
    /// their own: over HTTP/1.1 every one of them opens a connection, so when the token comes the
    /// burst's authenticated requests find their connections open instead of paying TCP and TLS
    /// handshakes then. The rest wait for the shared probe's 401 instead of each paying a round
    /// trip for it.
    private func firstContact(_ request: HTTPRequest, operation: String) async throws -> FirstContact {
        enum Role { case probe, own, waiter }
        let (probe, role) = pendingProbe.withLock { pending -> (Task<HTTPClientResponse, any Error>, Role) in
            if let current = pending {
                if current.askers < options.parallelFirstContacts {
                    pending?.askers += 1
                    return (current.task, .own)
                }
                pending?.waiters += 1
                return (current.task, .waiter)
            }
            let task = Task { () async throws -> HTTPClientResponse in try await self.execute(request) }
            pending = (task, waiters: 1, askers: 1)
            return (task, .probe)
        }
        if role == .own { return try answer(to: try await execute(request), operation: operation) }
        let result = await withTaskCancellationHandler {
            await probe.result
        } onCancel: {
            // The last waiter to leave calls the probe off (a hung one would otherwise hold every
            // first request of this vault until it times out); the next request asks afresh.
            let abandoned = pendingProbe.withLock { pending in
                guard let current = pending, current.task == probe else { return false }
                pending?.waiters -= 1
                guard current.waiters <= 1 else { return false }
                pending = nil
                return true
            }
            if abandoned { probe.cancel() }
        }
        if case .success(let response) = result, response.head.status.code == 401 {
            defer { if role == .probe { clearProbe(probe) } }
            return .learned(try learnChallenge(from: response, operation: operation))
        }
        if role == .probe {
            clearProbe(probe)
            return .answered(try result.get())
        }
        // The other request's answer taught nothing (an error, or no challenge): ask with this one.
        return try answer(to: try await execute(request), operation: operation)
    }

    private func answer(to own: HTTPClientResponse, operation: String) throws(KeyVaultError) -> FirstContact {
        guard own.head.status.code == 401 else { return .answered(own) }
        return .learned(try learnChallenge(from: own, operation: operation))
    }

    private func clearProbe(_ probe: Task<HTTPClientResponse, any Error>) {
        pendingProbe.withLock { if $0?.task == probe { $0 = nil } }
    }

    private func learnChallenge(from response: HTTPClientResponse, operation: String) throws(KeyVaultError)
        -> AuthenticationChallenge
    {
        guard let header = response.head.headerFields[.wwwAuthenticate],
            let parsed = AuthenticationChallenge.parse(header)
        else {
            throw KeyVaultError(
                kind: .unauthorized, operation: operation, vault: vault.url, status: 401,
                detail:
                    "the vault answered 401 without a Bearer challenge naming an authorization server and resource; is this a Key Vault endpoint?"
            )
        }
        if options.verifyChallengeResource, !parsed.isResource(of: vault) {
            throw KeyVaultError(
                kind: .challengeRejected, operation: operation, vault: vault.url,
                detail:
                    "the vault asked for a token for \(parsed.scope), but \(vault.authority) is not in that resource's domain, so no token was sent. "
                    + "Check the vault URL and cloud; for a custom domain you trust, disable challenge resource verification."
            )
        }
        challenge.learned.withLock { $0 = parsed }
        return parsed
    }

    /// The credential's token for the challenge. The last one is kept here until it is due for
    /// refresh, so most requests skip the trip through the credential's cache.
    private func token(for challenge: AuthenticationChallenge, operation: String) async throws(KeyVaultError)
        -> AccessToken
    {
        let now = Date()
        if let (known, token) = lastToken.withLock({ $0 }), known == challenge, now < token.refreshOn {
            return token
        }
        do {
            let token = try await credential.getToken(
                TokenRequestContext(scope: challenge.scope, tenantId: challenge.tenantId))
            lastToken.withLock { $0 = (challenge, token) }
            return token
        } catch {
            throw KeyVaultError(kind: .credential, operation: operation, vault: vault.url, detail: error.description)
        }
    }
}
