import HTTPTransport

/// Awaited before each page of a listing after the first (a rate limiter's turn); throwing ends
/// the listing as cancelled.
public typealias PagePacer = @Sendable () async throws -> Void

extension KeyVaultClient {
    /// Follows `nextLink` until it is absent or empty. Pages may be empty and still link on.
    /// The link's path and query are sent to this vault's host with this client's api-version,
    /// so a link naming another host (private endpoints, custom domains) never gets a token.
    ///
    /// Only the round trips are sequential. Each page's link is read ahead of decoding, the next
    /// page is requested at once, and pages decode in child tasks on the global pool meanwhile.
    /// The loop itself runs on the transport's thread when it offers one, so no thread hand-off
    /// sits between a page's answer and the next request.
    func list<Item: Decodable & Sendable>(
        _ type: Item.Type, path: String, operation: String, pacer: PagePacer?
    ) async throws(KeyVaultError) -> [Item] {
        do {
            return try await withTaskExecutorPreference(http.taskExecutor) {
                try await followPages(Item.self, path: path, operation: operation, pacer: pacer)
            }
        } catch let error as KeyVaultError {
            throw error
        } catch {
            throw KeyVaultError(kind: .cancelled, operation: operation, vault: vault.url, detail: "\(error)")
        }
    }

    private func followPages<Item: Decodable & Sendable>(
        _ type: Item.Type, path: String, operation: String, pacer: PagePacer?
    ) async throws -> [Item] {
        try await withThrowingTaskGroup(of: (Int, [Item]).self) { group in
            var nextPath = path
            var nextQuery: [String] = []
            var pages = 0
            var links = Set<String>()  // a vault whose links go round would be followed until the deadline
            while true {
                if pages > 0, let pacer { try await pacer() }
                let body = try await send(path: nextPath, query: nextQuery, operation: operation)
                let link = try (PageLink.scan(body) ?? decode(PageLink.self, body, operation: operation)).link
                let index = pages
                group.addTask(executorPreference: globalConcurrentExecutor) {
                    (index, try self.items(of: Item.self, body, expectedLink: link, operation: operation))
                }
                pages += 1
                guard let link else { break }
                guard pages < 100_000 else {
                    throw KeyVaultError(
                        kind: .invalidResponse, operation: operation, vault: vault.url,
                        detail: "more than 100000 pages; the vault keeps linking on")
                }
                guard links.insert(link).inserted else {
                    throw KeyVaultError(
                        kind: .invalidResponse, operation: operation, vault: vault.url,
                        detail: "page \(pages) links back to an earlier page; the vault's paging goes round in a loop")
                }
                (nextPath, nextQuery) = try split(nextLink: link, operation: operation)
            }
            var itemsByPage = [[Item]](repeating: [], count: pages)
            for try await (index, items) in group { itemsByPage[index] = items }
            return itemsByPage.flatMap { $0 }
        }
    }

    /// One page's items, checking that the link read ahead is the one the page really holds.
    private func items<Item: Decodable>(of type: Item.Type, _ body: [UInt8], expectedLink: String?, operation: String)
        throws(KeyVaultError) -> [Item]
    {
        let page = try decode(Page<Item>.self, body, operation: operation)
        guard PageLink(nextLink: page.nextLink).link == expectedLink else {
            throw KeyVaultError(
                kind: .invalidResponse, operation: operation, vault: vault.url,
                detail:
                    "a page's nextLink was misread ahead of decoding; please report this with the vault's API version")
        }
        return page.value ?? []
    }

    private static let urlCharacters = Set(
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~:/?#[]@!$&'()*+,;=%".utf8)

    /// The link's path, and its query items (`key=value`, kept as written) but for api-version.
    private func split(nextLink: String, operation: String) throws(KeyVaultError) -> (String, [String]) {
        let bytes = Array(nextLink.utf8)
        // Anything RFC 3986 does not allow in a URL (spaces, controls, raw non-ASCII, braces…)
        // would garble the request line.
        guard let authority = authorityStart(in: bytes), bytes.allSatisfy(Self.urlCharacters.contains) else {
            throw KeyVaultError(
                kind: .invalidResponse, operation: operation, vault: vault.url,
                detail: "nextLink \(nextLink.debugDescription) is not an absolute URL")
        }
        // The authority ends at the path, or at the query of a link without one.
        let pathStart =
            bytes[authority...].firstIndex { $0 == UInt8(ascii: "/") || $0 == UInt8(ascii: "?") } ?? bytes.endIndex
        let queryStart = bytes[pathStart...].firstIndex(of: UInt8(ascii: "?")) ?? bytes.endIndex
        let path = String(decoding: bytes[pathStart..<queryStart], as: UTF8.self)
        let query = bytes[queryStart...].dropFirst().split(separator: UInt8(ascii: "&"))
            .map { String(decoding: $0, as: UTF8.self) }
            .filter { $0 != "api-version" && !$0.hasPrefix("api-version=") }
        return (path.isEmpty ? "/" : path, query)
    }
}
