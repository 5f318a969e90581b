import PKI

/// The data of a `kubernetes.io/tls` Secret filled from a mounted file, as the Secrets Store CSI
/// driver fills it: `tls.crt` holds every CERTIFICATE block of the file in file order, each
/// re-encoded; `tls.key` holds the file's private key (its last block that is not a certificate)
/// in its algorithm's own format, PKCS#1 "RSA PRIVATE KEY" or SEC1 "EC PRIVATE KEY". A file with
/// no PEM blocks is read as PKCS#12 without a password (objectFormat pfx, objectEncoding binary).
public enum KubernetesTLSData {
    public struct Failure: Error, Sendable, Equatable, CustomStringConvertible {
        public var description: String

        public init(description: String) {
            self.description = description
        }
    }

    public static func certificates(from file: [UInt8]) throws(Failure) -> [UInt8] {
        let blocks = try pemBlocks(file)
        if blocks.isEmpty {
            let contents = try pkcs12(file)
            guard !contents.certificates.isEmpty else {
                throw Failure(description: "the PKCS#12 file holds no certificate for tls.crt")
            }
            return Array(contents.certificates.map { $0.pem() }.joined().utf8)
        }
        let certificates = blocks.filter { $0.label == "CERTIFICATE" }
        guard !certificates.isEmpty else {
            throw Failure(description: "the file holds no CERTIFICATE block for tls.crt")
        }
        return Array(certificates.map { PEM.encode($0.der, label: $0.label) }.joined().utf8)
    }

    public static func privateKey(from file: [UInt8]) throws(Failure) -> [UInt8] {
        let blocks = try pemBlocks(file)
        let key: PrivateKey
        if blocks.isEmpty {
            guard let first = try pkcs12(file).privateKeys.first else {
                throw Failure(description: "the PKCS#12 file holds no private key for tls.key")
            }
            key = first
        } else {
            guard let last = blocks.last(where: { $0.label != "CERTIFICATE" }) else {
                throw Failure(description: "the file holds no private key block for tls.key, only certificates")
            }
            do {
                key = try PrivateKey(der: last.der)
            } catch {
                throw Failure(
                    description:
                        "its \(last.label) block is not an unencrypted RSA or EC private key (PKCS#8, PKCS#1 or SEC1)")
            }
        }
        do {
            return Array(try key.traditionalPEM().utf8)
        } catch {
            throw Failure(description: "its private key could not be re-encoded: \(error)")
        }
    }

    private static func pemBlocks(_ file: [UInt8]) throws(Failure) -> [PEM.Block] {
        guard let text = String(validating: file, as: UTF8.self), text.contains("-----BEGIN ") else { return [] }
        do {
            return try PEM.decode(text)
        } catch {
            throw Failure(description: "the file's PEM is malformed: \(error)")
        }
    }

    private static func pkcs12(_ file: [UInt8]) throws(Failure) -> PKCS12.Contents {
        do {
            return try PKCS12.parse(file)
        } catch {
            throw Failure(description: "the file is neither PEM nor a PKCS#12 archive without a password")
        }
    }
}
