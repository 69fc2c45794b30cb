//! The event model: what a rule sees of an event.
//!
//! # Brief overview
//!
//! An event is a JSON document ([`Json`]). Rules name fields by dotted paths ([`FieldPath`]), which are
//! resolved the way Elasticsearch indexes documents: `process.name` finds `{"process": {"name": ..}}`
//! and `{"process.name": ..}` alike, and arrays anywhere on the way are flattened, so a field can have
//! several values ([`lookup_all`]). The legacy EQL dialect wants the structure instead (an array is one
//! value, `list[1]` indexes it): [`lookup_one`].
//!
//! Evaluation produces [`Value`]s that borrow strings from the document, so reading a field never copies.
//!
//! ```
//! use unithunt_event::{lookup_all, FieldPath, Value};
//! let doc: serde_json::Value = serde_json::json!({"process": {"args": ["systemctl", "enable"]}});
//! let path = FieldPath::parse("process.args");
//! let mut out = Vec::new();
//! lookup_all(&doc, &path, &mut out);
//! let values: Vec<Value> = out.into_iter().map(Value::from_json).collect();
//! assert_eq!(values, vec![Value::str("systemctl"), Value::str("enable")]);
//! ```

pub mod neutral;
mod path;
mod projection;
mod time;
mod value;

pub use path::{lookup_all, lookup_one, FieldPath, Segment};
pub use projection::{parse_projected, Projection};
pub use time::{format_iso_ms, parse_timestamp, TimestampFormat};
pub use value::Value;

/// A JSON document: the event as it was read.
pub type Json = serde_json::Value;
