//! The values the CLI's enum-like flags accept, declared once so `--help` lists them and clap
//! refuses anything else before a command runs. Each value is a spelling its domain type
//! parses; aliases keep the other spellings those parsers always took.

use clap::builder::{PossibleValue, PossibleValuesParser};

/// `platform profile --format`.
pub fn profile_formats() -> PossibleValuesParser {
    PossibleValuesParser::new([
        PossibleValue::new("apple").alias("mobileconfig"),
        PossibleValue::new("windows"),
        PossibleValue::new("intune"),
        PossibleValue::new("workspace-one").alias("workspaceone"),
    ])
}

/// `admin token create --scope`.
pub fn token_scopes() -> PossibleValuesParser {
    PossibleValuesParser::new([
        PossibleValue::new("admin").help("everything"),
        PossibleValue::new("read").help("GET only"),
    ])
}

/// `cert list --status`.
pub fn certificate_statuses() -> PossibleValuesParser {
    PossibleValuesParser::new(["valid", "revoked"])
}

/// `device list --state`.
pub fn device_states() -> PossibleValuesParser {
    PossibleValuesParser::new(["active", "suspended", "deactivated", "deleted"])
}

/// `--reason` of `cert revoke` and `device deactivate|delete` (RFC 5280 names; matched
/// without regard to case, with or without dashes or underscores).
pub fn revocation_reasons() -> PossibleValuesParser {
    PossibleValuesParser::new([
        PossibleValue::new("unspecified"),
        PossibleValue::new("keyCompromise").aliases(["key-compromise", "key_compromise"]),
        PossibleValue::new("affiliationChanged")
            .aliases(["affiliation-changed", "affiliation_changed"]),
        PossibleValue::new("superseded"),
        PossibleValue::new("cessationOfOperation")
            .aliases(["cessation-of-operation", "cessation_of_operation"]),
        PossibleValue::new("privilegeWithdrawn")
            .aliases(["privilege-withdrawn", "privilege_withdrawn"]),
    ])
}

/// `ca rotate --key-algorithm` (matched without regard to case).
pub fn key_algorithms() -> PossibleValuesParser {
    PossibleValuesParser::new([
        PossibleValue::new("rsa-2048").alias("rsa2048"),
        PossibleValue::new("rsa-3072").alias("rsa3072"),
        PossibleValue::new("rsa-4096").alias("rsa4096"),
        PossibleValue::new("ecdsa-p256").aliases(["p256", "p-256"]),
        PossibleValue::new("ecdsa-p384").aliases(["p384", "p-384"]),
    ])
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests fail loudly")]
mod tests {
    use super::*;
    use clap::builder::TypedValueParser;

    /// Every listed value, and every alias, is one its domain type parses: the lists cannot
    /// drift from the parsers behind them.
    #[test]
    fn every_accepted_spelling_parses_in_its_domain_type() {
        let spellings = |p: PossibleValuesParser| -> Vec<String> {
            p.possible_values()
                .into_iter()
                .flatten()
                .flat_map(|v| {
                    v.get_name_and_aliases()
                        .map(str::to_owned)
                        .collect::<Vec<_>>()
                })
                .collect()
        };
        for s in spellings(profile_formats()) {
            assert!(crate::profiles::Format::parse(&s).is_some(), "{s}");
        }
        for s in spellings(token_scopes()) {
            assert!(crate::admin::tokens::Scope::parse(&s).is_some(), "{s}");
        }
        for s in spellings(certificate_statuses()) {
            assert!(crate::store::CertStatus::parse(&s).is_some(), "{s}");
        }
        for s in spellings(device_states()) {
            assert!(crate::store::DeviceState::parse(&s).is_some(), "{s}");
        }
        let reasons = spellings(revocation_reasons());
        assert_eq!(reasons.len(), 14);
        for s in reasons {
            assert!(
                scepd_pki::revocation::RevocationReason::parse(&s).is_some(),
                "{s}"
            );
        }
        for s in spellings(key_algorithms()) {
            assert!(s.parse::<scepd_pki::keys::KeyAlgorithm>().is_ok(), "{s}");
        }
    }
}
