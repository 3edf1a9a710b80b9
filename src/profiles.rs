//! MDM profile export: an Apple configuration profile (`com.apple.security.scep` plus the root
//! certificate) and the values Windows' ClientCertificateInstall CSP, Intune and Workspace ONE
//! consoles ask for. Pure rendering: the caller supplies URLs, certificates and the challenge.

use scepd_pki::algorithms::DigestAlg;
use serde_json::{Value, json};

use crate::store::Platform;

/// Default subject: the seeds' recommended device-trust subject with Apple MDM variables.
pub const DEFAULT_APPLE_SUBJECT: &str = "CN=%ComputerName% managementAttestation %HardwareUUID%";
/// Intune's variables for the same subject.
pub const DEFAULT_INTUNE_SUBJECT: &str =
    "CN={{UserPrincipalName}} managementAttestation {{DeviceId}}";
/// Placeholder when a static secret is not supplied (scepd stores only its hash).
pub const CHALLENGE_PLACEHOLDER: &str = "REPLACE-WITH-PLATFORM-CHALLENGE";

/// Inputs of a profile.
pub struct ProfileInput<'a> {
    /// The platform.
    pub platform: &'a Platform,
    /// Full SCEP URL.
    pub scep_url: String,
    /// Challenge URL for dynamic platforms.
    pub challenge_url: Option<String>,
    /// The static challenge, when the operator supplies it.
    pub challenge: Option<&'a str>,
    /// Root CA certificate, DER.
    pub root_der: &'a [u8],
    /// Subject template override.
    pub subject: Option<&'a str>,
}

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Apple `.mobileconfig` (XML plist).
    Apple,
    /// Windows ClientCertificateInstall SCEP node values (JSON).
    Windows,
    /// Intune SCEP certificate profile fields (JSON).
    Intune,
    /// Workspace ONE SCEP payload fields (JSON).
    WorkspaceOne,
}

impl Format {
    /// Parses `apple|mobileconfig|windows|intune|workspace-one`.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "apple" | "mobileconfig" => Self::Apple,
            "windows" => Self::Windows,
            "intune" => Self::Intune,
            "workspace-one" | "workspaceone" => Self::WorkspaceOne,
            _ => return None,
        })
    }
}

/// Renders the profile; returns (content type, body).
pub fn render(input: &ProfileInput<'_>, format: Format) -> (&'static str, String) {
    match format {
        Format::Apple => ("application/x-apple-aspen-config", mobileconfig(input)),
        Format::Windows => ("application/json", windows(input).to_string()),
        Format::Intune => ("application/json", intune(input).to_string()),
        Format::WorkspaceOne => ("application/json", workspace_one(input).to_string()),
    }
}

fn challenge_value(input: &ProfileInput<'_>) -> Option<String> {
    match input.platform.challenge.kind() {
        "static" => Some(input.challenge.unwrap_or(CHALLENGE_PLACEHOLDER).to_owned()),
        // Dynamic: the MDM fetches one per device from the challenge URL and substitutes it.
        _ => None,
    }
}

fn hex_upper(d: &[u8]) -> String {
    scepd_pki::hex(d).to_ascii_uppercase()
}

fn uuid() -> String {
    // Apple profiles conventionally use uppercase UUIDs.
    crate::uuid::v4().to_ascii_uppercase()
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Subject template `CN=a,O=b` → Apple's array of RDN arrays `[[["CN","a"]],[["O","b"]]]`.
fn subject_plist(subject: &str) -> String {
    let mut out = String::from("<array>");
    for rdn in subject.split(',').map(str::trim).filter(|r| !r.is_empty()) {
        let (k, v) = rdn.split_once('=').unwrap_or(("CN", rdn));
        out.push_str(&format!(
            "<array><array><string>{}</string><string>{}</string></array></array>",
            xml_escape(k.trim()),
            xml_escape(v.trim())
        ));
    }
    out.push_str("</array>");
    out
}

fn mobileconfig(input: &ProfileInput<'_>) -> String {
    let p = input.platform;
    let subject = input.subject.unwrap_or(DEFAULT_APPLE_SUBJECT);
    let root_b64 = scepd_pki::encoding::encode_base64(input.root_der);
    let fingerprint =
        scepd_pki::encoding::encode_base64(DigestAlg::Sha256.digest(input.root_der).as_ref());
    let ident = format!("dev.scepd.{}", p.id);
    let challenge = challenge_value(input)
        .map(|c| format!("<key>Challenge</key><string>{}</string>", xml_escape(&c)))
        .unwrap_or_default();
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0">
<dict>
<key>PayloadContent</key>
<array>
<dict>
<key>PayloadContent</key><data>{root_b64}</data>
<key>PayloadDisplayName</key><string>scepd root CA</string>
<key>PayloadIdentifier</key><string>{ident}.root</string>
<key>PayloadType</key><string>com.apple.security.root</string>
<key>PayloadUUID</key><string>{u1}</string>
<key>PayloadVersion</key><integer>1</integer>
</dict>
<dict>
<key>PayloadContent</key>
<dict>
<key>URL</key><string>{url}</string>
<key>Name</key><string>{name}</string>
<key>Subject</key>{subject}
{challenge}
<key>Keysize</key><integer>2048</integer>
<key>Key Type</key><string>RSA</string>
<key>Key Usage</key><integer>1</integer>
<key>KeyIsExtractable</key><false/>
<key>AllowAllAppsAccess</key><true/>
<key>CAFingerprint</key><data>{fingerprint}</data>
<key>Retries</key><integer>3</integer>
<key>RetryDelay</key><integer>10</integer>
</dict>
<key>PayloadDisplayName</key><string>Device trust certificate ({name})</string>
<key>PayloadIdentifier</key><string>{ident}.scep</string>
<key>PayloadType</key><string>com.apple.security.scep</string>
<key>PayloadUUID</key><string>{u2}</string>
<key>PayloadVersion</key><integer>1</integer>
</dict>
</array>
<key>PayloadDisplayName</key><string>scepd device trust ({name})</string>
<key>PayloadIdentifier</key><string>{ident}</string>
<key>PayloadType</key><string>Configuration</string>
<key>PayloadUUID</key><string>{u3}</string>
<key>PayloadVersion</key><integer>1</integer>
</dict>
</plist>
"#,
        url = xml_escape(&input.scep_url),
        name = xml_escape(&p.name),
        subject = subject_plist(subject),
        u1 = uuid(),
        u2 = uuid(),
        u3 = uuid(),
    )
}

fn windows(input: &ProfileInput<'_>) -> Value {
    // ClientCertificateInstall CSP SCEP node values (MS-CSP); CAThumbprint is the root's SHA-1.
    json!({
        "ServerURL": input.scep_url,
        "Challenge": challenge_value(input),
        "ChallengeURL": input.challenge_url,
        "EKUMapping": "1.3.6.1.5.5.7.3.2",
        "KeyUsage": 128,
        "KeyProtection": 2,
        "KeyLength": 2048,
        "HashAlgorithm": "SHA-2",
        "CAThumbprint": hex_upper(DigestAlg::Sha1.digest(input.root_der).as_ref()),
        "SubjectName": input.subject.unwrap_or("CN=$DeviceId managementAttestation $DeviceId"),
        "RetryCount": 3,
        "RetryDelay": 5,
        "ValidPeriod": "Years",
        "ValidPeriodUnits": 1,
    })
}

fn intune(input: &ProfileInput<'_>) -> Value {
    json!({
        "Certificate type": "User",
        "Subject name format": input.subject.unwrap_or(DEFAULT_INTUNE_SUBJECT),
        "Subject alternative name": [{"Attribute": "URI", "Value": "{{DeviceId}}"}],
        "Certificate validity period": "1 Years",
        "Key storage provider (KSP)": "Enroll to Trusted Platform Module (TPM) KSP if present, otherwise Software KSP",
        "Key usage": ["Digital signature"],
        "Key size (bits)": 2048,
        "Hash algorithm": "SHA-2",
        "Root Certificate": {"thumbprint_sha1": hex_upper(DigestAlg::Sha1.digest(input.root_der).as_ref()), "certificate_base64": scepd_pki::encoding::encode_base64(input.root_der)},
        "Extended key usage": [{"Name": "Client Authentication", "Object Identifier": "1.3.6.1.5.5.7.3.2"}],
        "Renewal threshold (%)": 20,
        "SCEP Server URLs": [input.scep_url],
    })
}

fn workspace_one(input: &ProfileInput<'_>) -> Value {
    json!({
        "Credential Source": "Defined Certificate Authority",
        "Certificate Authority": {"Type": "SCEP", "SCEP URL": input.scep_url, "Challenge Type": if input.platform.challenge.kind() == "static" { "Static" } else { "Dynamic" },
            "Static Challenge": challenge_value(input), "Retry Timeout (ms)": 10000, "Max Retries When Pending": 3},
        "Certificate Template": {"Subject Name": input.subject.unwrap_or("CN={DeviceSerialNumber} managementAttestation {DeviceUid}"),
            "Private Key Length": 2048, "Private Key Type": ["Signing"], "Key Usage": ["Digital Signature"], "Allow Export": false,
            "Extended Key Usage": ["1.3.6.1.5.5.7.3.2"]},
        "Root Certificate": {"Thumbprint (SHA-1)": hex_upper(DigestAlg::Sha1.digest(input.root_der).as_ref()), "Certificate (base64 DER)": scepd_pki::encoding::encode_base64(input.root_der)},
    })
}
