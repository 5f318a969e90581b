import Glibc
import Prometheus
import Synchronization

/// `--metrics-address`: where Prometheus scrapes, and why it cannot listen there.
public struct MetricsAddressError: Error, CustomStringConvertible, Sendable {
    public var description: String
}

/// A Prometheus scrape endpoint: `GET /metrics` on a TCP address, answered from the registry,
/// one connection at a time on a thread of its own. Scrapes are small and rare, so it needs no
/// event loop; every read is bounded in size and time, so a client that stalls cannot hold it.
public final class MetricsEndpoint: Sendable {
    private let listener: Int32
    private let registry: PrometheusCollectorRegistry
    private let stopping = Atomic(false)
    private let thread = Mutex<pthread_t?>(nil)
    /// The address actually bound, as `host:port` (the port is the kernel's when 0 was asked).
    public let boundAddress: String

    /// `address` is `host:port`, `[v6]:port`, or `:port` for every interface.
    public init(address: String, registry: PrometheusCollectorRegistry) throws(MetricsAddressError) {
        let (host, port) = try Self.split(address)
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV
        var found: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(host.isEmpty ? nil : host, port, &hints, &found)
        guard status == 0, let first = found else {
            throw MetricsAddressError(
                description:
                    "--metrics-address \(address): cannot resolve '\(host)': \(String(cString: gai_strerror(status)))")
        }
        defer { freeaddrinfo(found) }
        let descriptor = socket(first.pointee.ai_family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard descriptor >= 0 else {
            throw MetricsAddressError(description: "--metrics-address \(address): socket: \(Self.reason())")
        }
        var yes: Int32 = 1
        setsockopt(descriptor, SOL_SOCKET, SO_REUSEADDR, &yes, socklen_t(MemoryLayout<Int32>.size))
        guard bind(descriptor, first.pointee.ai_addr, first.pointee.ai_addrlen) == 0, listen(descriptor, 16) == 0 else {
            let reason = Self.reason()
            close(descriptor)
            throw MetricsAddressError(
                description: "cannot listen for metrics on \(address): \(reason); choose another --metrics-address")
        }
        listener = descriptor
        self.registry = registry
        boundAddress = Self.describe(descriptor) ?? address
    }

    deinit {
        stop()
        close(listener)
    }

    /// Serves until `stop()`.
    public func start() {
        let unmanaged = Unmanaged.passRetained(self)
        var handle = pthread_t()
        let created = pthread_create(
            &handle, nil,
            { context in
                let endpoint = Unmanaged<MetricsEndpoint>.fromOpaque(context!).takeRetainedValue()
                endpoint.serve()
                return nil
            }, unmanaged.toOpaque())
        guard created == 0 else {
            unmanaged.release()
            return
        }
        thread.withLock { $0 = handle }
    }

    /// Waits for a scrape being answered to end (at most the 5 s a connection may take).
    public func stop() {
        stopping.store(true, ordering: .relaxed)
        guard
            let handle = thread.withLock({ running in
                defer { running = nil }
                return running
            })
        else { return }
        if pthread_equal(handle, pthread_self()) == 0 { pthread_join(handle, nil) }
    }

    private func serve() {
        while !stopping.load(ordering: .relaxed) {
            var waiting = pollfd(fd: listener, events: Int16(POLLIN), revents: 0)
            guard poll(&waiting, 1, 500) > 0 else { continue }
            let connection = accept(listener, nil, nil)
            guard connection >= 0 else { continue }
            _ = fcntl(connection, F_SETFD, FD_CLOEXEC)
            answer(connection)
            close(connection)
        }
    }

    private func answer(_ connection: Int32) {
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(connection, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(connection, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        // The request line and headers, at most 8 KiB; the body of a GET is not read.
        var request: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1024)
        while request.count < 8192, !request.containsHeaderEnd {
            let count = recv(connection, &chunk, chunk.count, 0)
            guard count > 0 else { break }
            request += chunk[..<count]
        }
        let line = String(decoding: request.prefix { $0 != 0x0D && $0 != 0x0A }, as: UTF8.self).split(separator: " ")
        let (status, body): (String, [UInt8])
        switch (line.first, line.dropFirst().first?.split(separator: "?").first) {
        case ("GET", "/metrics"?), ("HEAD", "/metrics"?): (status, body) = ("200 OK", registry.emitToBuffer())
        case ("GET", _), ("HEAD", _): (status, body) = ("404 Not Found", Array("metrics are at /metrics\n".utf8))
        default: (status, body) = ("405 Method Not Allowed", Array("GET /metrics\n".utf8))
        }
        let head =
            "HTTP/1.1 \(status)\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\nContent-Length: \(body.count)\r\nConnection: close\r\n\r\n"
        var response = Array(head.utf8)
        if line.first != "HEAD" { response += body }
        var sent = 0
        while sent < response.count {
            let count = response[sent...].withUnsafeBytes {
                send(connection, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL))
            }
            guard count > 0 else { return }
            sent += count
        }
    }

    private static func split(_ address: String) throws(MetricsAddressError) -> (host: String, port: String) {
        let usage =
            "--metrics-address \(address) is not host:port (e.g. 0.0.0.0:9090, 127.0.0.1:9090, [::]:9090 or :9090)"
        guard let colon = address.lastIndex(of: ":") else { throw MetricsAddressError(description: usage) }
        var host = String(address[..<colon])
        let port = String(address[address.index(after: colon)...])
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        guard let number = Int(port), (0...65535).contains(number), !host.contains(":") || address.hasPrefix("[") else {
            throw MetricsAddressError(description: usage)
        }
        return (host, port)
    }

    private static func describe(_ descriptor: Int32) -> String? {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let got = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(descriptor, $0, &length) }
        }
        guard got == 0 else { return nil }
        var host = [CChar](repeating: 0, count: Int(NI_MAXHOST))
        var service = [CChar](repeating: 0, count: Int(NI_MAXSERV))
        let named = withUnsafePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                getnameinfo(
                    $0, length, &host, socklen_t(host.count), &service, socklen_t(service.count),
                    NI_NUMERICHOST | NI_NUMERICSERV)
            }
        }
        guard named == 0 else { return nil }
        let hostText = String(cString: host)
        return (hostText.contains(":") ? "[\(hostText)]" : hostText) + ":" + String(cString: service)
    }

    private static func reason() -> String { String(cString: strerror(errno)) }
}

extension [UInt8] {
    fileprivate var containsHeaderEnd: Bool {
        count >= 4
            && indices.dropLast(3).contains {
                self[$0] == 0x0D && self[$0 + 1] == 0x0A && self[$0 + 2] == 0x0D && self[$0 + 3] == 0x0A
            }
    }
}
