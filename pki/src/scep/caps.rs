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
    /// are listed explicitly as well (scep-protocol.md §2.1).
    pub fn body(self) -> String {
        let mut caps = vec![
            "AES",
            "DES3",
            "SHA-1",
            "SHA-256",
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
