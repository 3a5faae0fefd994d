//! The rest of an HTTP/1.1 request once its request line is read: what the
//! tests' stand-in collectors need to answer it. Included with
//! `#[path = "common/http1.rs"] mod http1;` by tests that do not need the
//! in-memory harness.

use std::io::BufRead;

/// Reads the headers and the body (by `content-length`); `None` when the
/// connection ended first.
pub fn read_headers_and_body(reader: &mut impl BufRead) -> Option<Vec<u8>> {
    let mut length = 0usize;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).unwrap_or(0) == 0 {
            return None;
        }
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().unwrap_or(0);
            }
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    Some(body)
}
