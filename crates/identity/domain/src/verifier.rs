//! Who says a real name, an identity number and a vehicle belong together: an
//! authority (the public-security registry, a bank's real-name check, the
//! traffic police's vehicle registry). The platform only asks through
//! [`IdentityVerifier`]; [`SandboxIdentityVerifier`] is the one that ships, for
//! development, demos and tests, and asks nobody.

use crate::types::IdNumber;
use async_trait::async_trait;
use serde::Serialize;

/// What the authority answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum VerifyOutcome {
    /// The records say these belong together.
    Match,
    /// The records say they do not (or the authority does not know them).
    NoMatch,
    /// The authority could not be asked now; nothing is known, try again later.
    Unavailable,
}

#[async_trait]
pub trait IdentityVerifier: Send + Sync {
    /// Short stable name, recorded with each verification it made ("sandbox").
    fn name(&self) -> &'static str;

    /// Whether this verifier only pretends (no authority is asked). Required of
    /// every verifier, so a new one cannot pass for real by omission; the app
    /// tells people on the verification forms and refuses such a verifier in
    /// production.
    fn is_sandbox(&self) -> bool;

    /// Whether `name` is the registered holder of `id_number` (and, when the
    /// authority checks it, `phone` is registered to them).
    async fn verify_person(&self, name: &str, id_number: &IdNumber, phone: Option<&str>) -> VerifyOutcome;

    /// Whether the vehicle registration certificate `certificate` is the one of
    /// `plate`, registered to `holder_name` with `id_number`.
    async fn verify_vehicle(
        &self,
        plate: &str,
        certificate: &str,
        holder_name: &str,
        id_number: &IdNumber,
    ) -> VerifyOutcome;
}

/// The sandbox's documented decisions, for tests and demos.
///
/// People: any syntactically valid identity number (GB 11643, check character
/// right; the caller parses it) matches any name, except the names in
/// [`NO_MATCH_NAMES`] (the registry answers "no match") and
/// [`UNAVAILABLE_NAMES`] (the registry does not answer).
///
/// Vehicles: a registration certificate number is 12 digits; the sandbox
/// matches one whose last digit is the sum of its first 11 digits modulo 10
/// ([`certificate_check_ok`], e.g. [`VALID_CERTIFICATE`]), whatever the plate
/// and holder; [`UNAVAILABLE_CERTIFICATE`] does not answer; every other
/// 12-digit number does not match.
pub mod sandbox {
    /// Names the sandbox registry answers "no match" for.
    pub const NO_MATCH_NAMES: &[&str] = &["不匹配", "No Match"];
    /// Names the sandbox registry does not answer for (Unavailable).
    pub const UNAVAILABLE_NAMES: &[&str] = &["无应答", "No Answer"];
    /// A certificate number the sandbox matches (3+3+0+1+… = 7).
    pub const VALID_CERTIFICATE: &str = "330100000007";
    /// A well-formed certificate number the sandbox does not match.
    pub const WRONG_CERTIFICATE: &str = "330100000000";
    /// The certificate number for which the sandbox registry does not answer.
    pub const UNAVAILABLE_CERTIFICATE: &str = "999999999999";

    /// The sandbox's check: 12 digits, the last the sum of the others mod 10.
    pub fn certificate_check_ok(certificate: &str) -> bool {
        let b = certificate.as_bytes();
        if b.len() != 12 || !b.iter().all(u8::is_ascii_digit) {
            return false;
        }
        let sum: u32 = b[..11].iter().map(|d| u32::from(d - b'0')).sum();
        u32::from(b[11] - b'0') == sum % 10
    }

    /// A certificate number the sandbox matches, from 11 digits (for tests and the demo).
    pub fn certificate_for(first11: &str) -> String {
        let sum: u32 = first11.bytes().filter(u8::is_ascii_digit).map(|d| u32::from(d - b'0')).sum();
        format!("{first11}{}", sum % 10)
    }
}

/// A verifier that asks nobody: its decisions are the documented rules of
/// [`sandbox`]. Every form that uses it says so.
#[derive(Debug, Default, Clone, Copy)]
pub struct SandboxIdentityVerifier;

#[async_trait]
impl IdentityVerifier for SandboxIdentityVerifier {
    fn name(&self) -> &'static str {
        "sandbox"
    }

    fn is_sandbox(&self) -> bool {
        true
    }

    async fn verify_person(&self, name: &str, _id_number: &IdNumber, _phone: Option<&str>) -> VerifyOutcome {
        let name = name.trim();
        if sandbox::UNAVAILABLE_NAMES.contains(&name) {
            VerifyOutcome::Unavailable
        } else if sandbox::NO_MATCH_NAMES.contains(&name) {
            VerifyOutcome::NoMatch
        } else {
            VerifyOutcome::Match
        }
    }

    async fn verify_vehicle(
        &self,
        _plate: &str,
        certificate: &str,
        _holder_name: &str,
        _id_number: &IdNumber,
    ) -> VerifyOutcome {
        if certificate == sandbox::UNAVAILABLE_CERTIFICATE {
            VerifyOutcome::Unavailable
        } else if sandbox::certificate_check_ok(certificate) {
            VerifyOutcome::Match
        } else {
            VerifyOutcome::NoMatch
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sandbox_certificates() {
        assert!(sandbox::certificate_check_ok(sandbox::VALID_CERTIFICATE));
        assert!(!sandbox::certificate_check_ok(sandbox::WRONG_CERTIFICATE));
        assert!(!sandbox::certificate_check_ok("33010000007"));
        assert_eq!(sandbox::certificate_for("33010000000"), sandbox::VALID_CERTIFICATE);
        assert!(sandbox::certificate_check_ok(&sandbox::certificate_for("12345678901")));
    }

    #[tokio::test]
    async fn sandbox_people() {
        let n = IdNumber::parse("11010519491231002X").unwrap();
        let v = SandboxIdentityVerifier;
        assert!(v.is_sandbox());
        assert_eq!(v.verify_person("王小明", &n, None).await, VerifyOutcome::Match);
        assert_eq!(v.verify_person(" 不匹配 ", &n, None).await, VerifyOutcome::NoMatch);
        assert_eq!(v.verify_person("No Answer", &n, None).await, VerifyOutcome::Unavailable);
        let c = sandbox::VALID_CERTIFICATE;
        assert_eq!(v.verify_vehicle("浙A12345", c, "王小明", &n).await, VerifyOutcome::Match);
        let w = sandbox::WRONG_CERTIFICATE;
        assert_eq!(v.verify_vehicle("浙A12345", w, "王小明", &n).await, VerifyOutcome::NoMatch);
        let u = sandbox::UNAVAILABLE_CERTIFICATE;
        assert_eq!(v.verify_vehicle("浙A12345", u, "王小明", &n).await, VerifyOutcome::Unavailable);
    }
}
