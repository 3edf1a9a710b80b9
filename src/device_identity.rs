//! Which device a certificate belongs to, from the request: the token after
//! `managementAttestation` in the CN (`CN={user} managementAttestation {deviceId}`), else the
//! Intune SID SAN URI, else the whole CN.

use scepd_pki::x509::general_names::AltName;
use scepd_pki::x509::name;

const MARKER: &str = "managementAttestation";
const INTUNE_SID_PREFIX: &str = "tag:microsoft.com,2022-09-14:sid:";

/// The device id for a subject and its SANs.
pub fn extract(subject: &[u8], sans: &[AltName]) -> Option<String> {
    let cn = name::common_name(subject);
    if let Some(cn) = &cn {
        let mut words = cn.split_whitespace();
        if words.any(|w| w == MARKER) {
            if let Some(id) = words.next() {
                return Some(id.to_owned());
            }
        }
    }
    for s in sans {
        if let AltName::Uri(u) = s {
            if let Some(sid) = u.strip_prefix(INTUNE_SID_PREFIX) {
                return Some(sid.to_owned());
            }
        }
    }
    cn.filter(|c| !c.is_empty())
}
