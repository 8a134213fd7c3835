//! gRPC over HTTP/2 (the gRPC project's `PROTOCOL-HTTP2.md`): a call is a stream whose
//! content-type is `application/grpc` (or `application/grpc+proto`, ...); each
//! message in a DATA stream is a 5-byte prefix (compressed flag, 32-bit big-endian
//! length) and the message. Messages are counted, never read. The call's outcome
//! is `grpc-status` (and `grpc-message`) in the trailers, or in the only HEADERS of
//! a trailers-only response.

use crate::http::Text;

/// Longest `grpc-message` kept (it is the server's text, so an attacker's).
pub const MAX_GRPC_MESSAGE: usize = 128;

/// What the exchange says about a gRPC call.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Grpc {
    /// `grpc-status` (0 OK, 5 NOT_FOUND, 7 PERMISSION_DENIED, 16 UNAUTHENTICATED...).
    pub status: Option<u32>,
    /// `grpc-message` as sent (percent-encoded), at most [`MAX_GRPC_MESSAGE`] bytes.
    pub message: Option<Text>,
    /// Messages the client sent.
    pub request_messages: u64,
    /// Messages the server sent.
    pub response_messages: u64,
}

impl Grpc {
    /// The HTTP status detectors should read for this call: gRPC failures that mean
    /// what 401, 403 and 404 mean are read as those, whatever `:status` was (gRPC
    /// answers them with 200).
    pub fn as_http_status(&self) -> Option<u16> {
        match self.status? {
            16 => Some(401), // UNAUTHENTICATED
            7 => Some(403),  // PERMISSION_DENIED
            5 => Some(404),  // NOT_FOUND
            _ => None,
        }
    }
}

/// Whether a content-type names gRPC.
pub fn is_grpc(content_type: &str) -> bool {
    content_type
        .get(..16)
        .is_some_and(|p| p.eq_ignore_ascii_case("application/grpc"))
}

/// Counts length-prefixed messages in one direction's DATA bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MessageCounter {
    /// Prefix bytes read of the next message (0-5).
    prefix: u8,
    len: [u8; 4],
    /// Message bytes still to skip.
    left: u64,
    pub messages: u64,
}

impl MessageCounter {
    pub fn feed(&mut self, mut b: &[u8]) {
        while !b.is_empty() {
            if self.left > 0 {
                let n = (self.left.min(b.len() as u64)) as usize;
                self.left -= n as u64;
                b = &b[n..];
                continue;
            }
            // The flag byte, then the four length bytes.
            if self.prefix > 0 {
                self.len[usize::from(self.prefix) - 1] = b[0];
            }
            self.prefix += 1;
            b = &b[1..];
            if self.prefix == 5 {
                self.prefix = 0;
                self.messages += 1;
                self.left = u64::from(u32::from_be_bytes(self.len));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_messages_across_pieces() {
        let mut c = MessageCounter::default();
        // Two messages of 3 and 0 bytes, then one of 2 cut across pieces.
        let bytes = [0, 0, 0, 0, 3, 1, 2, 3, 0, 0, 0, 0, 0, 1, 0, 0, 0, 2, 9, 9];
        for piece in bytes.chunks(3) {
            c.feed(piece);
        }
        assert_eq!(c.messages, 3);
        assert_eq!(c.left, 0);
        assert_eq!(c.prefix, 0);
    }

    #[test]
    fn reads_grpc_content_types() {
        assert!(is_grpc("application/grpc"));
        assert!(is_grpc("application/grpc+proto"));
        assert!(is_grpc("Application/GRPC-web"));
        assert!(!is_grpc("application/json"));
    }

    #[test]
    fn maps_failures_to_http_statuses() {
        let g = |s| Grpc {
            status: Some(s),
            ..Default::default()
        };
        assert_eq!(g(16).as_http_status(), Some(401));
        assert_eq!(g(7).as_http_status(), Some(403));
        assert_eq!(g(5).as_http_status(), Some(404));
        assert_eq!(g(0).as_http_status(), None);
    }
}
