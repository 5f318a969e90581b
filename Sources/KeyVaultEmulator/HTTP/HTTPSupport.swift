import FoundationEssentials
import HTTPTypes
import Hummingbird
import NIOCore

/// Per-request context: Hummingbird's core storage plus the channel, which fault injection needs
/// to drop a connection without answering.
struct EmulatorRequestContext: RequestContext {
    var coreContext: CoreRequestContextStorage
    let channel: any Channel

    init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        channel = source.channel
    }

    var maxUploadSize: Int { 4 << 20 }
}

/// A wire type whose every key is its property's name in snake_case (OAuth and OpenID Connect
/// documents): encoded so, without a CodingKeys table spelling each one out.
protocol SnakeCaseKeys: Encodable {}

enum JSON {
    static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.withoutEscapingSlashes]
        return encoder
    }()

    static let snakeCaseEncoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.withoutEscapingSlashes]
        encoder.keyEncodingStrategy = .convertToSnakeCase
        return encoder
    }()

    static func bytes(_ value: some Encodable) -> [UInt8] {
        do {
            return Array(try (value is any SnakeCaseKeys ? snakeCaseEncoder : encoder).encode(value))
        } catch {
            preconditionFailure("encoding an emulator response failed: \(error)")
        }
    }

    static func decode<T: Decodable>(_ type: T.Type, from body: [UInt8]) throws(KeyVaultFailure) -> T {
        do {
            return try JSONDecoder().decode(type, from: Data(body))
        } catch let error as DecodingError {
            throw .badParameter("The request body is not valid: \(error.readableDescription).")
        } catch {
            throw .badParameter("The request body is not valid JSON.")
        }
    }
}

extension Response {
    static func json(_ value: some Encodable, status: Int = 200, headers extra: HTTPFields = [:]) -> Response {
        bytes(JSON.bytes(value), status: status, contentType: "application/json; charset=utf-8", headers: extra)
    }

    static func page(_ page: PageJSON<some Encodable>) -> Response {
        bytes(page.bytes, status: 200, contentType: "application/json; charset=utf-8")
    }

    static func bytes(_ body: [UInt8], status: Int, contentType: String?, headers extra: HTTPFields = [:]) -> Response {
        var headers = extra
        if let contentType { headers[.contentType] = contentType }
        headers[.contentLength] = String(body.count)
        return Response(
            status: HTTPResponse.Status(code: status),
            headers: headers,
            body: ResponseBody(byteBuffer: ByteBuffer(bytes: body))
        )
    }

    static func empty(status: Int, headers: HTTPFields = [:]) -> Response {
        bytes([], status: status, contentType: nil, headers: headers)
    }
}

extension KeyVaultFailure {
    struct Envelope: Encodable {
        struct Body: Encodable {
            struct Inner: Encodable { var code: String }
            var code: String
            var message: String
            var innererror: Inner?
        }
        var error: Body
    }

    func response(extraHeaders: HTTPFields = [:]) -> Response {
        var headers = extraHeaders
        for (name, value) in self.headers {
            if let field = HTTPField.Name(name) { headers[field] = value }
        }
        let envelope = Envelope(
            error: .init(code: code, message: message, innererror: innerCode.map { .init(code: $0) }))
        return .json(envelope, status: status, headers: headers)
    }
}

extension EntraFailure {
    struct Body: Encodable {
        var error: String
        var errorDescription: String
        var errorCodes: [Int]
        var timestamp: String
        var traceId: String
        var correlationId: String

        enum CodingKeys: String, CodingKey {
            case error, timestamp
            case errorDescription = "error_description"
            case errorCodes = "error_codes"
            case traceId = "trace_id"
            case correlationId = "correlation_id"
        }
    }

    func response() -> Response {
        let traceId = Identifiers.newUUID()
        let correlationId = Identifiers.newUUID()
        let timestamp = Date().formatted(.iso8601)
        let body = Body(
            error: error,
            errorDescription:
                "AADSTS\(code): \(description) Trace ID: \(traceId) Correlation ID: \(correlationId) Timestamp: \(timestamp)",
            errorCodes: [code],
            timestamp: timestamp,
            traceId: traceId,
            correlationId: correlationId
        )
        return .json(body, status: status)
    }
}

/// Managed-identity endpoints answer errors as `{"error":…,"error_description":…}`.
struct ManagedIdentityFailure: Error, Sendable {
    var status: Int
    var error: String
    var description: String

    func response() -> Response {
        struct Body: Encodable {
            var error: String
            var errorDescription: String
            enum CodingKeys: String, CodingKey {
                case error
                case errorDescription = "error_description"
            }
        }
        return .json(Body(error: error, errorDescription: description), status: status)
    }
}

enum FormEncoding {
    /// Parses `application/x-www-form-urlencoded` (also used for query strings): `+` is a space.
    static func parse(_ text: String) -> [String: String] {
        var result: [String: String] = [:]
        for pair in text.split(separator: "&", omittingEmptySubsequences: true) {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let name = decode(parts[0])
            let value = parts.count > 1 ? decode(parts[1]) : ""
            if result[name] == nil { result[name] = value }
        }
        return result
    }

    static func decode(_ text: Substring) -> String {
        var bytes: [UInt8] = []
        var iterator = Array(text.utf8).makeIterator()
        while let byte = iterator.next() {
            switch byte {
            case UInt8(ascii: "+"):
                bytes.append(UInt8(ascii: " "))
            case UInt8(ascii: "%"):
                if let high = iterator.next(), let low = iterator.next(),
                    let value = UInt8(String(decoding: [high, low], as: UTF8.self), radix: 16)
                {
                    bytes.append(value)
                }
            default:
                bytes.append(byte)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}

/// What every handler needs to know about the request, read once.
struct IncomingRequest: Sendable {
    var method: String
    /// Host header without the port, lower-cased.
    var hostName: String
    /// Host header as sent (with port), lower-cased.
    var authority: String
    var path: String
    var rawQuery: String?
    var query: [String: String]
    var headers: HTTPFields
    var body: [UInt8]

    init(request: Request, body: [UInt8]) {
        method = request.method.rawValue
        authority = (request.head.authority ?? "").lowercased()
        if authority.hasPrefix("[") {
            hostName = String(authority.prefix { $0 != "]" }.dropFirst())
        } else {
            hostName = String(authority.split(separator: ":", maxSplits: 1).first ?? "")
        }
        let target = request.uri.description
        if let mark = target.firstIndex(of: "?") {
            path = String(target[..<mark])
            rawQuery = String(target[target.index(after: mark)...])
        } else {
            path = target
            rawQuery = nil
        }
        query = FormEncoding.parse(rawQuery ?? "")
        headers = request.headers
        self.body = body
    }

    var pathSegments: [String] { path.split(separator: "/").map(String.init) }

    /// The Host header's port with its colon (":8443"), or "" without one.
    var portSuffix: String {
        let afterHost =
            authority.hasPrefix("[") ? authority.drop { $0 != "]" }.dropFirst() : authority.drop { $0 != ":" }
        return String(afterHost)
    }
}
