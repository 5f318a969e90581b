import FoundationEssentials
import HTTPTransport
import HTTPTypes

/// Small helpers the credentials share for talking to token endpoints.
enum HTTPSupport {
    /// Percent-encodes a form or query value (RFC 3986 unreserved characters pass).
    static func formEncode(_ text: String) -> String {
        var result = ""
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"),
                UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."), UInt8(ascii: "~"):
                result.append(Character(UnicodeScalar(byte)))
            default:
                let hex = String(byte, radix: 16, uppercase: true)
                result += "%" + (hex.count == 1 ? "0" + hex : hex)
            }
        }
        return result
    }

    static func form(_ fields: [(String, String)]) -> [UInt8] {
        Array(fields.map { "\($0.0)=\(formEncode($0.1))" }.joined(separator: "&").utf8)
    }

    static func query(_ fields: [(String, String)]) -> String {
        fields.map { "\($0.0)=\(formEncode($0.1))" }.joined(separator: "&")
    }

    /// Splits `scheme://authority/path` into an HTTPRequest. Only http and https are accepted.
    static func request(_ method: HTTPRequest.Method, url: String, headers: HTTPFields = [:]) -> HTTPRequest? {
        let scheme: String
        let rest: Substring
        if url.hasPrefix("https://") {
            scheme = "https"
            rest = url.dropFirst("https://".count)
        } else if url.hasPrefix("http://") {
            scheme = "http"
            rest = url.dropFirst("http://".count)
        } else {
            return nil
        }
        let authority = rest.prefix { $0 != "/" && $0 != "?" }
        guard !authority.isEmpty else { return nil }
        var path = String(rest.dropFirst(authority.count))
        if path.isEmpty || path.hasPrefix("?") { path = "/" + path }
        return HTTPRequest(
            method: method, scheme: scheme, authority: String(authority), path: path, headerFields: headers)
    }

    /// A JSON number that some endpoints send as a string (`"expires_in": "3599"`).
    struct FlexibleNumber: Decodable {
        var value: Double
        init(from decoder: any Decoder) throws {
            let container = try decoder.singleValueContainer()
            if let number = try? container.decode(Double.self) {
                value = number
            } else if let text = try? container.decode(String.self), let number = Double(text) {
                value = number
            } else {
                throw DecodingError.dataCorruptedError(
                    in: container, debugDescription: "expected a number or a numeric string")
            }
        }
    }

    /// The token fields every Entra and managed-identity endpoint answers with, in its own spelling.
    struct TokenResponse: Decodable {
        var accessToken: String
        var expiresIn: FlexibleNumber?
        var expiresOn: FlexibleNumber?

        enum CodingKeys: String, CodingKey {
            case accessToken = "access_token"
            case expiresIn = "expires_in"
            case expiresOn = "expires_on"
        }

        func accessToken(now: Date) -> AccessToken? {
            let expiry: Date
            if let expiresIn {
                expiry = now.addingTimeInterval(expiresIn.value)
            } else if let expiresOn {
                expiry = Date(timeIntervalSince1970: expiresOn.value)
            } else {
                return nil
            }
            guard !accessToken.isEmpty else { return nil }
            return AccessToken(token: accessToken, expiresOn: expiry, issuedAt: now)
        }
    }

    /// The token in a 200 answer's body, or nil when it lacks a token or an expiry.
    static func accessToken(in body: [UInt8], now: Date) -> AccessToken? {
        (try? JSONDecoder().decode(TokenResponse.self, from: Data(body)))?.accessToken(now: now)
    }

    /// `{"error": "...", "error_description": "..."}`, as Entra and IMDS send errors.
    struct ErrorResponse: Decodable {
        var error: String?
        var errorDescription: String?

        enum CodingKeys: String, CodingKey {
            case error
            case errorDescription = "error_description"
        }

        static func summary(of body: [UInt8], status: Int) -> String {
            guard let parsed = try? JSONDecoder().decode(ErrorResponse.self, from: Data(body)) else {
                return "HTTP \(status)"
            }
            // Entra's words go into logs, messages and pod events: escaped, and short.
            return OutsideText.escaped(
                [parsed.error, parsed.errorDescription].compactMap { $0 }.joined(separator: ": "), limit: 1024)
        }
    }

    static func isRetryable(status: Int) -> Bool {
        status == 408 || status == 429 || (500...599).contains(status)
    }
}
