import PKI

/// Creates and imports Key Vault keys. Runs outside the store actor: RSA key generation takes
/// long enough that it must not hold up other requests.
enum KeyFactory {
    static let rsaSizes = [2048, 3072, 4096]

    static func defaultOperations(for keyType: String) -> [String] {
        keyType.hasPrefix("EC")
            ? ["sign", "verify"] : ["encrypt", "decrypt", "sign", "verify", "wrapKey", "unwrapKey"]
    }

    /// Reads a key type and size or curve the way Key Vault does and generates the key.
    static func generate(keyType requested: String?, size: Int?, curve: String?) throws(KeyVaultFailure) -> (
        key: PrivateKey, keyType: String
    ) {
        let keyType = requested ?? (curve == nil ? "RSA" : "EC")
        switch keyType {
        case "RSA", "RSA-HSM":
            let bits = size ?? 2048
            guard rsaSizes.contains(bits) else {
                throw .badParameter("Invalid key size \(bits) for an RSA key. Allowed sizes are 2048, 3072 and 4096.")
            }
            return (try generate(.rsa(bits: bits)), keyType)
        case "EC", "EC-HSM":
            let curveName = curve ?? "P-256"
            guard let ecCurve = ECCurve(rawValue: curveName) else {
                throw .badParameter(
                    "The curve '\(curveName)' is not supported by the emulator. Supported curves are P-256, P-384 and P-521."
                )
            }
            return (try generate(.ec(ecCurve)), keyType)
        case "oct", "oct-HSM":
            throw .badParameter("Key type '\(keyType)' is only available in Managed HSM, not in a key vault.")
        default:
            throw .badParameter("Invalid key type '\(keyType)'. Allowed key types are RSA, RSA-HSM, EC and EC-HSM.")
        }
    }

    private static func generate(_ algorithm: KeyAlgorithm) throws(KeyVaultFailure) -> PrivateKey {
        do {
            return try PrivateKey.generate(algorithm)
        } catch {
            throw KeyVaultFailure(
                status: 500, code: "InternalServerError", message: "Key generation failed: \(error.reason)")
        }
    }

    /// Validates an imported JWK by loading its private key, and returns the public members.
    static func importPublicPart(of jwk: JSONWebKey) throws(KeyVaultFailure) -> JSONWebKey {
        guard ["RSA", "RSA-HSM", "EC", "EC-HSM"].contains(jwk.kty) else {
            throw .badParameter(
                "Invalid key type '\(jwk.kty)' for import. Allowed key types are RSA, RSA-HSM, EC and EC-HSM.")
        }
        guard jwk.d != nil else {
            throw .badParameter("The imported key must include its private key material (the 'd' member).")
        }
        do {
            let key = try PrivateKey(jwk: jwk)
            var publicJWK = try key.publicKey.jwk()
            publicJWK.kty = jwk.kty
            return publicJWK
        } catch {
            throw .badParameter("The imported key is not a valid JSON Web Key: \(error.reason)")
        }
    }
}
