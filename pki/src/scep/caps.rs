//! GetCACaps (RFC 8894 §3.5.2): one keyword per line, exact case, nothing we do not implement.

/// What the server implements, rendered as the GetCACaps body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capabilities {
    /// RenewalReq is accepted (authenticated by the signer certificate).
    pub renewal: bool,
    /// GetNextCACert is available (a next CA is staged).
    pub get_next_ca_cert: bool,
}

impl Capabilities {
    /// The body: keywords joined by LF. Apple ignores `SCEPStandard`, so the implied keywords
    /// are listed explicitly as well (docs/scep-protocol.md §2.1). `SHA-384` is not an RFC 8894
    /// keyword, but we verify SHA-384 and strongSwan 5.9.8 (Debian 12) needs it: it tests
    /// capability bit numbers as masks (fixed in 5.9.11, "pki: Fix enum for SCEP CA
    /// capabilities"), so it accepts AES only when the keyword at bit 3, SHA-384, is listed.
    /// Clients ignore keywords they do not know (§3.5.2).
    pub fn body(self) -> String {
        let mut caps = vec![
            "AES",
            "DES3",
            "SHA-1",
            "SHA-256",
            "SHA-384",
            "SHA-512",
            "POSTPKIOperation",
            "SCEPStandard",
        ];
        if self.renewal {
            caps.push("Renewal");
        }
        if self.get_next_ca_cert {
            caps.push("GetNextCACert");
        }
        let mut s = caps.join("\n");
        s.push('\n');
        s
    }
}
