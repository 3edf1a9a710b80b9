//! The device-trust certificate profile (what scepd puts in every device certificate).

/// Policy for device certificates, set by configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceProfile {
    /// Validity in seconds (default one year), clamped to the issuer's notAfter.
    pub validity_secs: i64,
    /// Backdating of notBefore to absorb device clock skew.
    pub backdate_secs: i64,
    /// Smallest RSA modulus accepted in a request (default 2048; 1024 only for legacy fleets).
    pub min_rsa_bits: usize,
    /// Whether EC keys (P-256/P-384) may be certified.
    pub allow_ec_keys: bool,
    /// cRLDistributionPoints URI, if configured.
    pub crl_url: Option<String>,
    /// OCSP responder URI for authorityInfoAccess, if configured.
    pub ocsp_url: Option<String>,
    /// caIssuers URI for authorityInfoAccess, if configured.
    pub ca_issuers_url: Option<String>,
    /// Copy subjectAltNames from the request's extensionRequest.
    pub copy_san: bool,
}

impl Default for DeviceProfile {
    fn default() -> Self {
        Self {
            validity_secs: 365 * 86_400,
            backdate_secs: 300,
            min_rsa_bits: 2048,
            allow_ec_keys: true,
            crl_url: None,
            ocsp_url: None,
            ca_issuers_url: None,
            copy_san: true,
        }
    }
}
