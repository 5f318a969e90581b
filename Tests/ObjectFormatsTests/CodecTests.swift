import PKI
import Testing

@testable import ObjectFormats

@Suite struct CodecTests {
    /// The PEM writer must lay blocks out exactly as PKI (and Go's pem.Encode) do, at every length
    /// around the 48-byte line boundary.
    @Test func pemWriterMatchesPKI() {
        for count in 0...200 {
            let der = (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 37 &+ 11) }
            let written = PEMWriter.encode(der, label: "PRIVATE KEY")
            #expect(text(written) == PEM.encode(der, label: "PRIVATE KEY"), "\(count) bytes")
            #expect(written.count == PEMWriter.encodedLength(derCount: count, label: "PRIVATE KEY"), "\(count) bytes")
        }
    }

    @Test func base64RoundTripsAtEveryLength() throws {
        for count in 0...70 {
            let data = (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 101 &+ 7) }
            #expect(try StrictBase64.decode(base64(data).utf8) == data, "\(count) bytes")
        }
    }

    @Test func hexDecodesBothCases() throws {
        #expect(try HexText.decode("00ff7Fa0".utf8) == [0x00, 0xFF, 0x7F, 0xA0])
        #expect(throws: DecodingFailure.self) { try HexText.decode("0g".utf8) }
    }

    @Test func wipeZeroesInPlace() {
        var secret: [UInt8] = [1, 2, 3, 4]
        secret.wipe()
        #expect(secret == [0, 0, 0, 0])
        var empty: [UInt8] = []
        empty.wipe()
        #expect(empty.isEmpty)
    }
}
