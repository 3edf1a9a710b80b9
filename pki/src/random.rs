//! Randomness as a parameter, so tests can pin it and the crate stays sans-IO.

/// A source of cryptographically secure random bytes.
pub trait Random: Send + Sync {
    /// Fills `buf`; fails only if the system source fails.
    fn fill(&self, buf: &mut [u8]) -> Result<(), RandomError>;
}

/// The system CSPRNG failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("system random source failed")]
pub struct RandomError;

/// The operating system's CSPRNG via aws-lc.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemRandom;

impl Random for SystemRandom {
    fn fill(&self, buf: &mut [u8]) -> Result<(), RandomError> {
        aws_lc_rs::rand::fill(buf).map_err(|_| RandomError)
    }
}
