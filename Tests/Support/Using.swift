/// Runs `body` with `resource` and then `release`s it, whether `body` returned or threw: the
/// start, use, always-stop shape of every emulator, mount and plugin fixture. Swift has no async
/// `defer`, so each fixture would otherwise write its clean-up twice.
public func using<Resource>(
    _ resource: Resource, release: (Resource) async -> Void, _ body: (Resource) async throws -> Void
) async throws {
    do {
        try await body(resource)
    } catch {
        await release(resource)
        throw error
    }
    await release(resource)
}
