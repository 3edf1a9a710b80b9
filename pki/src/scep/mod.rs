//! SCEP (RFC 8894): message attributes, the server side (decode a pkiMessage, build a CertRep),
//! the client side (for tests, benchmarks and the load tool), GetCACaps and HTTP decoding.

pub mod ca_certs;
pub mod caps;
pub mod client;
pub mod http;
pub mod message;
pub mod request;
pub mod response;

pub use message::{FailInfo, MessageType, Nonce, PkiStatus, TransactionId};
pub use request::{DecodeError, Envelope, MessageData, OpenError, Opened, Recipient, Request};
pub use response::{CertRepSigner, FailureReply};
