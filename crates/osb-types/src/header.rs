//! Names of the HTTP headers OSB uses, as `http::HeaderName`s, and the OSB version each
//! appeared in (`API_VERSION_SINCE`, …), generated from the spec. [`ALL`] lists them.
//!
//! ```
//! use osb_types::{header, ApiVersion};
//! assert_eq!(header::API_VERSION.as_str(), "x-broker-api-version");
//! assert_eq!(header::REQUEST_IDENTITY_SINCE, ApiVersion::V2_15);
//! ```

pub use crate::generated::headers::*;
