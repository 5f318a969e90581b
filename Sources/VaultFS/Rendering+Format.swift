import ObjectCache
import ObjectFormats
import PKI

extension Rendering {
    /// Turns a fetched object into file bytes, as `akvfs get` does.
    func render(_ object: FetchedObject) throws(ObjectCache.RenderError) -> ObjectCache.RenderedBytes {
        do throws(ObjectFormatError) {
            var formatted: FormattedObject
            switch (object.payload, self) {
            case (.secret(let bytes), .standard(.pem, nil)) where !object.metadata.certificateBacked:
                // The value as it is: the file shares the payload's buffer instead of copying it.
                return ObjectCache.RenderedBytes(bytes: bytes, warnings: [])
            case (.secret(let bytes), .standard(let format, let encoding)):
                formatted = try ObjectFormatter.secret(
                    value: String(decoding: bytes, as: UTF8.self),
                    contentType: object.metadata.contentType,
                    certificateBacked: object.metadata.certificateBacked,
                    format: format,
                    encoding: encoding
                )
            case (.secret(let bytes), .tls(let part)):
                let material = try ObjectFormatter.tlsMaterial(
                    value: String(decoding: bytes, as: UTF8.self), contentType: object.metadata.contentType)
                let bytes: [UInt8] =
                    switch part {
                    case .privateKey: material.privateKeyPEM
                    case .certificate: material.leafPEM
                    case .chain: material.chainPEM
                    case .fullChain: material.fullChainPEM
                    }
                formatted = FormattedObject(bytes: bytes, warnings: material.warnings)
            case (.key(let jwk), _):
                formatted = try ObjectFormatter.key(jwk)
            case (.certificate(let der), _):
                formatted = ObjectFormatter.certificate(cer: der)
            }
            return ObjectCache.RenderedBytes(bytes: SecretBytes(taking: &formatted.bytes), warnings: formatted.warnings)
        } catch {
            throw ObjectCache.RenderError(error.message)
        }
    }
}
