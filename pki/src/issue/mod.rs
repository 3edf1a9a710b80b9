//! Certificate issuance: extensions, the TBSCertificate builder, serials, the device profile
//! and the pipeline from a verified CSR to a signed certificate.

pub mod certificate;
pub mod extensions;
pub mod pipeline;
pub mod profile;
pub mod serial;

pub use certificate::TbsCertificate;
pub use pipeline::{IssueError, IssuedCertificate, issue_device_certificate};
pub use profile::DeviceProfile;
