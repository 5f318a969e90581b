import ObjectFormats
import Testing

@Suite struct SecretTests {
    /// TestGetSecret.
    @Test func plainSecretIsItsUTF8Bytes() throws {
        let object = try ObjectFormatter.secret(value: "secret1value", contentType: nil, certificateBacked: false)
        #expect(object.bytes == bytes("secret1value"))
        #expect(object.warnings.isEmpty)
        let unicode = try ObjectFormatter.secret(
            value: "pässwörd ✓", contentType: "text/plain", certificateBacked: false)
        #expect(unicode.bytes == bytes("pässwörd ✓"))
    }

    /// TestGetContentBytes.
    @Test func encodingsDecodeTheValue() throws {
        func decode(_ value: String, _ encoding: ObjectEncoding?) throws -> String {
            text(
                try ObjectFormatter.secret(value: value, contentType: nil, certificateBacked: false, encoding: encoding)
                    .bytes)
        }
        #expect(try decode("abcdefg", nil) == "abcdefg")
        #expect(try decode("abcdefg", .utf8) == "abcdefg")
        #expect(try decode("QmFzZTY0RW5jb2RlZFN0cmluZw==", .base64) == "Base64EncodedString")
        #expect(try decode("486578456E636F646564537472696E67", .hex) == "HexEncodedString")
        #expect(try decode("486578456e636f646564537472696e67", .hex) == "HexEncodedString")
        #expect(try decode("", .base64) == "")
        #expect(try decode("", .hex) == "")
    }

    @Test func base64IsStandardWithPadding() throws {
        func decode(_ value: String) throws(ObjectFormatError) -> [UInt8] {
            try ObjectFormatter.secret(value: value, contentType: nil, certificateBacked: false, encoding: .base64)
                .bytes
        }
        #expect(try decode("YQ==") == [0x61])
        #expect(try decode("YWI=") == [0x61, 0x62])
        #expect(try decode("YWJj") == [0x61, 0x62, 0x63])
        #expect(try decode("+/+/") == [0xFB, 0xFF, 0xBF])
        // Go's StdEncoding skips CR and LF, so wrapped base64 decodes.
        #expect(try decode("QmFzZTY0\r\nRW5jb2RlZFN0\ncmluZw==\n") == bytes("Base64EncodedString"))

        let rejected = [
            "QmFzZTY0RW5jb2RlZFN0cmluZw",  // padding missing
            "YQ=",  // padding incomplete
            "YWJ",
            "-_-_",  // base64url alphabet
            "YQ==YQ==",  // data after padding
            "Y===",
            "=YWJ",
            "YW=j",
            "YWJj YWJj",  // spaces are not skipped
        ]
        for value in rejected {
            let error = #expect(throws: ObjectFormatError.self, "\(value)") { try decode(value) }
            #expect(error?.message.hasPrefix("failed to decode secret value as base64: ") == true)
        }
    }

    @Test func hexErrors() {
        for value in ["abc", "zz", "0x41", "41 42"] {
            let error = #expect(throws: ObjectFormatError.self, "\(value)") {
                try ObjectFormatter.secret(value: value, contentType: nil, certificateBacked: false, encoding: .hex)
            }
            #expect(error?.message.hasPrefix("failed to decode secret value as hex: ") == true)
        }
    }

    @Test func errorsDoNotQuoteTheValue() {
        let value = "hunter2-secret-VALUE!"
        for encoding in [ObjectEncoding.base64, .hex] {
            let error = #expect(throws: ObjectFormatError.self) {
                try ObjectFormatter.secret(value: value, contentType: nil, certificateBacked: false, encoding: encoding)
            }
            #expect(error?.message.contains("hunter2") == false)
            #expect(error?.message.contains("!") == false)
        }
    }

    @Test func parametersAreCaseInsensitive() {
        #expect(ObjectEncoding(parameter: "utf-8") == .utf8)
        #expect(ObjectEncoding(parameter: "UTF-8") == .utf8)
        #expect(ObjectEncoding(parameter: "base64") == .base64)
        #expect(ObjectEncoding(parameter: "BasE64") == .base64)
        #expect(ObjectEncoding(parameter: "HEX") == .hex)
        #expect(ObjectEncoding(parameter: "NotAnEncoding") == nil)
        #expect(ObjectEncoding(parameter: "utf-16") == nil)
        #expect(ObjectEncoding(parameter: "") == nil)
        #expect(CertificateFormat(parameter: "PEM") == .pem)
        #expect(CertificateFormat(parameter: "pfx") == .pfx)
        #expect(CertificateFormat(parameter: "PfX") == .pfx)
        #expect(CertificateFormat(parameter: "pkcs") == nil)
    }

    /// A PEM-typed certificate-backed secret passes through byte for byte, whatever its encoding says.
    @Test func pemCertificateSecretIsUnchanged() throws {
        for value in ["cert+key", "-----BEGIN CERTIFICATE-----\r\nnot really\r\n-----END CERTIFICATE-----\r\n", ""] {
            for encoding in [nil, ObjectEncoding.utf8, .base64, .hex] {
                let object = try ObjectFormatter.secret(
                    value: value, contentType: ContentTypes.pem, certificateBacked: true,
                    encoding: encoding)
                #expect(object.bytes == bytes(value))
                #expect(object.warnings.isEmpty)
            }
        }
    }

    @Test func contentTypeErrors() {
        let unknown = #expect(throws: ObjectFormatError.self) {
            try ObjectFormatter.secret(value: "x", contentType: "text/plain", certificateBacked: true)
        }
        #expect(unknown?.message == "failed to get certificate. unknown content type 'text/plain'")

        for contentType in [nil, ""] as [String?] {
            let missing = #expect(throws: ObjectFormatError.self) {
                try ObjectFormatter.secret(value: "x", contentType: contentType, certificateBacked: true)
            }
            #expect(
                missing?.message
                    == "certificate-backed secret has no content type; expected application/x-pkcs12 or application/x-pem-file"
            )
        }
        // The content type of a plain secret is just a label.
        #expect(throws: Never.self) {
            try ObjectFormatter.secret(value: "x", contentType: "text/plain", certificateBacked: false)
        }
    }

    @Test func pfxFormatNeedsAPKCS12CertificateSecret() {
        let plain = #expect(throws: ObjectFormatError.self) {
            try ObjectFormatter.secret(value: "secret1value", contentType: nil, certificateBacked: false, format: .pfx)
        }
        #expect(plain?.message.contains("objectFormat pfx needs a certificate-backed secret stored as PKCS#12") == true)
        #expect(plain?.message.contains("secret1value") == false)

        let pem = #expect(throws: ObjectFormatError.self) {
            try ObjectFormatter.secret(
                value: "cert+key", contentType: ContentTypes.pem, certificateBacked: true, format: .pfx)
        }
        #expect(pem?.message.contains("objectFormat pfx needs a certificate-backed secret stored as PKCS#12") == true)
        #expect(pem?.message.contains("application/x-pem-file") == true)
    }

    @Test func contentTypeMatchIgnoresCase() throws {
        let object = try ObjectFormatter.secret(
            value: "cert+key", contentType: "Application/X-PEM-File", certificateBacked: true)
        #expect(object.bytes == bytes("cert+key"))
    }
}
