//! Object identifiers, as the content octets of their DER encoding (generated from the dotted
//! forms shown in each doc comment; `tests::dotted_forms` re-derives them).

/// rsaEncryption: `1.2.840.113549.1.1.1`
pub const RSA_ENCRYPTION: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
/// id-RSAES-OAEP: `1.2.840.113549.1.1.7`
pub const RSAES_OAEP: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x07];
/// id-RSASSA-PSS: `1.2.840.113549.1.1.10`
pub const RSASSA_PSS: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0a];
/// id-mgf1: `1.2.840.113549.1.1.8`
pub const MGF1: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x08];
/// sha1WithRSAEncryption: `1.2.840.113549.1.1.5`
pub const SHA1_WITH_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x05];
/// sha256WithRSAEncryption: `1.2.840.113549.1.1.11`
pub const SHA256_WITH_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b];
/// sha384WithRSAEncryption: `1.2.840.113549.1.1.12`
pub const SHA384_WITH_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0c];
/// sha512WithRSAEncryption: `1.2.840.113549.1.1.13`
pub const SHA512_WITH_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0d];
/// id-ecPublicKey: `1.2.840.10045.2.1`
pub const EC_PUBLIC_KEY: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
/// prime256v1 / secp256r1: `1.2.840.10045.3.1.7`
pub const SECP256R1: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
/// secp384r1: `1.3.132.0.34`
pub const SECP384R1: &[u8] = &[0x2b, 0x81, 0x04, 0x00, 0x22];
/// ecdsa-with-SHA1: `1.2.840.10045.4.1`
pub const ECDSA_WITH_SHA1: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x01];
/// ecdsa-with-SHA256: `1.2.840.10045.4.3.2`
pub const ECDSA_WITH_SHA256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02];
/// ecdsa-with-SHA384: `1.2.840.10045.4.3.3`
pub const ECDSA_WITH_SHA384: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03];
/// ecdsa-with-SHA512: `1.2.840.10045.4.3.4`
pub const ECDSA_WITH_SHA512: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x04];
/// id-sha1: `1.3.14.3.2.26`
pub const SHA1: &[u8] = &[0x2b, 0x0e, 0x03, 0x02, 0x1a];
/// id-sha256: `2.16.840.1.101.3.4.2.1`
pub const SHA256: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01];
/// id-sha384: `2.16.840.1.101.3.4.2.2`
pub const SHA384: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02];
/// id-sha512: `2.16.840.1.101.3.4.2.3`
pub const SHA512: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x03];
/// id-md5 (refused: RFC 8894 §2.9): `1.2.840.113549.2.5`
pub const MD5: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x02, 0x05];
/// desCBC: `1.3.14.3.2.7`
pub const DES_CBC: &[u8] = &[0x2b, 0x0e, 0x03, 0x02, 0x07];
/// des-ede3-cbc: `1.2.840.113549.3.7`
pub const DES_EDE3_CBC: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x03, 0x07];
/// id-aes128-CBC: `2.16.840.1.101.3.4.1.2`
pub const AES128_CBC: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x01, 0x02];
/// id-aes192-CBC: `2.16.840.1.101.3.4.1.22`
pub const AES192_CBC: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x01, 0x16];
/// id-aes256-CBC: `2.16.840.1.101.3.4.1.42`
pub const AES256_CBC: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x01, 0x2a];
/// id-data: `1.2.840.113549.1.7.1`
pub const DATA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x01];
/// id-signedData: `1.2.840.113549.1.7.2`
pub const SIGNED_DATA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x02];
/// id-envelopedData: `1.2.840.113549.1.7.3`
pub const ENVELOPED_DATA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x03];
/// id-contentType: `1.2.840.113549.1.9.3`
pub const CONTENT_TYPE: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x03];
/// id-messageDigest: `1.2.840.113549.1.9.4`
pub const MESSAGE_DIGEST: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x04];
/// id-signingTime: `1.2.840.113549.1.9.5`
pub const SIGNING_TIME: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x05];
/// pkcs-9-at-challengePassword: `1.2.840.113549.1.9.7`
pub const CHALLENGE_PASSWORD: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x07];
/// pkcs-9-at-extensionRequest: `1.2.840.113549.1.9.14`
pub const EXTENSION_REQUEST: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x0e];
/// id-messageType (RFC 8894 §3.2.1): `2.16.840.1.113733.1.9.2`
pub const SCEP_MESSAGE_TYPE: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x86, 0xf8, 0x45, 0x01, 0x09, 0x02];
/// id-pkiStatus: `2.16.840.1.113733.1.9.3`
pub const SCEP_PKI_STATUS: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x86, 0xf8, 0x45, 0x01, 0x09, 0x03];
/// id-failInfo: `2.16.840.1.113733.1.9.4`
pub const SCEP_FAIL_INFO: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x86, 0xf8, 0x45, 0x01, 0x09, 0x04];
/// id-senderNonce: `2.16.840.1.113733.1.9.5`
pub const SCEP_SENDER_NONCE: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x86, 0xf8, 0x45, 0x01, 0x09, 0x05];
/// id-recipientNonce: `2.16.840.1.113733.1.9.6`
pub const SCEP_RECIPIENT_NONCE: &[u8] =
    &[0x60, 0x86, 0x48, 0x01, 0x86, 0xf8, 0x45, 0x01, 0x09, 0x06];
/// id-transactionID: `2.16.840.1.113733.1.9.7`
pub const SCEP_TRANSACTION_ID: &[u8] =
    &[0x60, 0x86, 0x48, 0x01, 0x86, 0xf8, 0x45, 0x01, 0x09, 0x07];
/// id-scep-failInfoText: `1.3.6.1.5.5.7.24.1`
pub const SCEP_FAIL_INFO_TEXT: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x18, 0x01];
/// id-ce-subjectKeyIdentifier: `2.5.29.14`
pub const SUBJECT_KEY_IDENTIFIER: &[u8] = &[0x55, 0x1d, 0x0e];
/// id-ce-keyUsage: `2.5.29.15`
pub const KEY_USAGE: &[u8] = &[0x55, 0x1d, 0x0f];
/// id-ce-subjectAltName: `2.5.29.17`
pub const SUBJECT_ALT_NAME: &[u8] = &[0x55, 0x1d, 0x11];
/// id-ce-basicConstraints: `2.5.29.19`
pub const BASIC_CONSTRAINTS: &[u8] = &[0x55, 0x1d, 0x13];
/// id-ce-cRLNumber: `2.5.29.20`
pub const CRL_NUMBER: &[u8] = &[0x55, 0x1d, 0x14];
/// id-ce-cRLDistributionPoints: `2.5.29.31`
pub const CRL_DISTRIBUTION_POINTS: &[u8] = &[0x55, 0x1d, 0x1f];
/// id-ce-authorityKeyIdentifier: `2.5.29.35`
pub const AUTHORITY_KEY_IDENTIFIER: &[u8] = &[0x55, 0x1d, 0x23];
/// id-ce-extKeyUsage: `2.5.29.37`
pub const EXT_KEY_USAGE: &[u8] = &[0x55, 0x1d, 0x25];
/// id-pe-authorityInfoAccess: `1.3.6.1.5.5.7.1.1`
pub const AUTHORITY_INFO_ACCESS: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x01, 0x01];
/// id-kp-clientAuth: `1.3.6.1.5.5.7.3.2`
pub const KP_CLIENT_AUTH: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x02];
/// id-ad-ocsp: `1.3.6.1.5.5.7.48.1`
pub const AD_OCSP: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x01];
/// id-ad-caIssuers: `1.3.6.1.5.5.7.48.2`
pub const AD_CA_ISSUERS: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x02];
/// id-at-commonName: `2.5.4.3`
pub const AT_COMMON_NAME: &[u8] = &[0x55, 0x04, 0x03];
/// id-at-countryName: `2.5.4.6`
pub const AT_COUNTRY: &[u8] = &[0x55, 0x04, 0x06];
/// id-at-organizationName: `2.5.4.10`
pub const AT_ORGANIZATION: &[u8] = &[0x55, 0x04, 0x0a];
/// id-at-organizationalUnitName: `2.5.4.11`
pub const AT_ORGANIZATIONAL_UNIT: &[u8] = &[0x55, 0x04, 0x0b];

/// id-ce-cRLReasons: `2.5.29.21`
pub const CRL_REASON: &[u8] = &[0x55, 0x1d, 0x15];
/// id-pkix-ocsp-basic: `1.3.6.1.5.5.7.48.1.1`
pub const OCSP_BASIC: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x01, 0x01];
/// id-pkix-ocsp-nonce: `1.3.6.1.5.5.7.48.1.2`
pub const OCSP_NONCE: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x01, 0x02];
/// id-kp-OCSPSigning: `1.3.6.1.5.5.7.3.9`
pub const KP_OCSP_SIGNING: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x09];

/// id-PBES2: `1.2.840.113549.1.5.13`
pub const PBES2: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x05, 0x0d];
/// id-PBKDF2: `1.2.840.113549.1.5.12`
pub const PBKDF2: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x05, 0x0c];
/// id-hmacWithSHA256: `1.2.840.113549.2.9`
pub const HMAC_WITH_SHA256: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x02, 0x09];

/// Dotted-decimal text of an OID's content octets (for logs and errors).
pub fn dotted(content: &[u8]) -> String {
    let mut parts: Vec<u64> = Vec::new();
    let mut acc: u64 = 0;
    for (i, b) in content.iter().enumerate() {
        acc = (acc << 7) | u64::from(b & 0x7f);
        if b & 0x80 == 0 {
            if parts.is_empty() && i < 4 {
                let first = (acc / 40).min(2);
                parts.push(first);
                parts.push(acc - first * 40);
            } else {
                parts.push(acc);
            }
            acc = 0;
        }
    }
    parts
        .iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join(".")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dotted_forms() {
        assert_eq!(dotted(RSA_ENCRYPTION), "1.2.840.113549.1.1.1");
        assert_eq!(dotted(RSAES_OAEP), "1.2.840.113549.1.1.7");
        assert_eq!(dotted(MGF1), "1.2.840.113549.1.1.8");
        assert_eq!(dotted(RSASSA_PSS), "1.2.840.113549.1.1.10");
        assert_eq!(dotted(SHA1_WITH_RSA), "1.2.840.113549.1.1.5");
        assert_eq!(dotted(SHA256_WITH_RSA), "1.2.840.113549.1.1.11");
        assert_eq!(dotted(SHA384_WITH_RSA), "1.2.840.113549.1.1.12");
        assert_eq!(dotted(SHA512_WITH_RSA), "1.2.840.113549.1.1.13");
        assert_eq!(dotted(EC_PUBLIC_KEY), "1.2.840.10045.2.1");
        assert_eq!(dotted(SECP256R1), "1.2.840.10045.3.1.7");
        assert_eq!(dotted(SECP384R1), "1.3.132.0.34");
        assert_eq!(dotted(ECDSA_WITH_SHA1), "1.2.840.10045.4.1");
        assert_eq!(dotted(ECDSA_WITH_SHA256), "1.2.840.10045.4.3.2");
        assert_eq!(dotted(ECDSA_WITH_SHA384), "1.2.840.10045.4.3.3");
        assert_eq!(dotted(ECDSA_WITH_SHA512), "1.2.840.10045.4.3.4");
        assert_eq!(dotted(SHA1), "1.3.14.3.2.26");
        assert_eq!(dotted(SHA256), "2.16.840.1.101.3.4.2.1");
        assert_eq!(dotted(SHA384), "2.16.840.1.101.3.4.2.2");
        assert_eq!(dotted(SHA512), "2.16.840.1.101.3.4.2.3");
        assert_eq!(dotted(MD5), "1.2.840.113549.2.5");
        assert_eq!(dotted(DES_CBC), "1.3.14.3.2.7");
        assert_eq!(dotted(DES_EDE3_CBC), "1.2.840.113549.3.7");
        assert_eq!(dotted(AES128_CBC), "2.16.840.1.101.3.4.1.2");
        assert_eq!(dotted(AES192_CBC), "2.16.840.1.101.3.4.1.22");
        assert_eq!(dotted(AES256_CBC), "2.16.840.1.101.3.4.1.42");
        assert_eq!(dotted(DATA), "1.2.840.113549.1.7.1");
        assert_eq!(dotted(SIGNED_DATA), "1.2.840.113549.1.7.2");
        assert_eq!(dotted(ENVELOPED_DATA), "1.2.840.113549.1.7.3");
        assert_eq!(dotted(CONTENT_TYPE), "1.2.840.113549.1.9.3");
        assert_eq!(dotted(MESSAGE_DIGEST), "1.2.840.113549.1.9.4");
        assert_eq!(dotted(SIGNING_TIME), "1.2.840.113549.1.9.5");
        assert_eq!(dotted(CHALLENGE_PASSWORD), "1.2.840.113549.1.9.7");
        assert_eq!(dotted(EXTENSION_REQUEST), "1.2.840.113549.1.9.14");
        assert_eq!(dotted(SCEP_MESSAGE_TYPE), "2.16.840.1.113733.1.9.2");
        assert_eq!(dotted(SCEP_PKI_STATUS), "2.16.840.1.113733.1.9.3");
        assert_eq!(dotted(SCEP_FAIL_INFO), "2.16.840.1.113733.1.9.4");
        assert_eq!(dotted(SCEP_SENDER_NONCE), "2.16.840.1.113733.1.9.5");
        assert_eq!(dotted(SCEP_RECIPIENT_NONCE), "2.16.840.1.113733.1.9.6");
        assert_eq!(dotted(SCEP_TRANSACTION_ID), "2.16.840.1.113733.1.9.7");
        assert_eq!(dotted(SCEP_FAIL_INFO_TEXT), "1.3.6.1.5.5.7.24.1");
        assert_eq!(dotted(SUBJECT_KEY_IDENTIFIER), "2.5.29.14");
        assert_eq!(dotted(KEY_USAGE), "2.5.29.15");
        assert_eq!(dotted(SUBJECT_ALT_NAME), "2.5.29.17");
        assert_eq!(dotted(BASIC_CONSTRAINTS), "2.5.29.19");
        assert_eq!(dotted(CRL_NUMBER), "2.5.29.20");
        assert_eq!(dotted(CRL_DISTRIBUTION_POINTS), "2.5.29.31");
        assert_eq!(dotted(AUTHORITY_KEY_IDENTIFIER), "2.5.29.35");
        assert_eq!(dotted(EXT_KEY_USAGE), "2.5.29.37");
        assert_eq!(dotted(AUTHORITY_INFO_ACCESS), "1.3.6.1.5.5.7.1.1");
        assert_eq!(dotted(KP_CLIENT_AUTH), "1.3.6.1.5.5.7.3.2");
        assert_eq!(dotted(AD_OCSP), "1.3.6.1.5.5.7.48.1");
        assert_eq!(dotted(AD_CA_ISSUERS), "1.3.6.1.5.5.7.48.2");
        assert_eq!(dotted(AT_COMMON_NAME), "2.5.4.3");
        assert_eq!(dotted(AT_COUNTRY), "2.5.4.6");
        assert_eq!(dotted(AT_ORGANIZATION), "2.5.4.10");
        assert_eq!(dotted(AT_ORGANIZATIONAL_UNIT), "2.5.4.11");
        assert_eq!(dotted(CRL_REASON), "2.5.29.21");
        assert_eq!(dotted(OCSP_BASIC), "1.3.6.1.5.5.7.48.1.1");
        assert_eq!(dotted(OCSP_NONCE), "1.3.6.1.5.5.7.48.1.2");
        assert_eq!(dotted(KP_OCSP_SIGNING), "1.3.6.1.5.5.7.3.9");
        assert_eq!(dotted(PBES2), "1.2.840.113549.1.5.13");
        assert_eq!(dotted(PBKDF2), "1.2.840.113549.1.5.12");
        assert_eq!(dotted(HMAC_WITH_SHA256), "1.2.840.113549.2.9");
    }
}
