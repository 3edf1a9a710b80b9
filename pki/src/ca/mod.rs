//! CA hierarchy: the root, the issuing intermediate and the RSA RA that speaks SCEP.

pub mod hierarchy;
pub mod profiles;

pub use hierarchy::{Authority, Hierarchy, HierarchySpec};
