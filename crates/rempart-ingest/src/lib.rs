//! Decoders and normalizers for security telemetry, and the file sources that feed them.
//!
//! The decoding core ([`decode`]) turns bytes into [`rempart_model::Event`]s. It is
//! synchronous and allocation-conscious, and it never stops at bad input: a line or record it
//! cannot decode becomes a [`Rejection`] naming where and why, and decoding goes on with the
//! next one. [`files`] walks paths, opens `.gz`, `.zip` and `.tar.gz` in place with capped
//! decompression, and streams everything through the decoders.
//!
//! Architecture invariant: nothing here is async and nothing here writes anywhere. Durability
//! is the store's job; network listeners live in `rempart-server`.

pub mod capped;
pub mod decode;
pub mod files;
mod limits;

pub use decode::{DecodeOptions, Decoded, Rejection, StreamDecoder, decode_bytes};
pub use limits::Limits;
