use super::*;

fn req(block: &str) -> Head {
    parse_head(Role::Request, block.as_bytes()).expect("request head")
}

fn request_line(h: &Head) -> (&str, &str, &str) {
    match &h.start {
        StartLine::Request {
            method,
            uri,
            version,
        } => (method, uri, version),
        other => panic!("not a request: {other:?}"),
    }
}

/// Feeds `input` to a reader in pieces of `piece` bytes, choosing framing the way a
/// connection does for a lone message stream, and returns (heads, body bytes, errors).
fn read_all(
    role: Role,
    input: &[u8],
    piece: usize,
    framing: Framing,
) -> (Vec<Head>, Vec<u8>, Vec<ParseError>) {
    read_framed(role, input, piece, |_| framing)
}

/// [`read_all`] with the framing chosen per head.
fn read_framed(
    role: Role,
    input: &[u8],
    piece: usize,
    framing_of: impl Fn(&Head) -> Framing,
) -> (Vec<Head>, Vec<u8>, Vec<ParseError>) {
    let mut r = MessageReader::new(role);
    let (mut heads, mut body, mut errors) = (Vec::new(), Vec::new(), Vec::new());
    for chunk in input.chunks(piece.max(1)) {
        let mut data = chunk;
        loop {
            match r.step(&mut data) {
                Step::NeedMore if data.is_empty() => break,
                Step::NeedMore | Step::End => {}
                Step::Head(h) => {
                    r.set_framing(framing_of(&h));
                    heads.push(*h);
                }
                Step::Body(b) => body.extend_from_slice(b),
                Step::Error(e) => errors.push(e),
            }
        }
    }
    (heads, body, errors)
}

#[test]
fn request_line_and_headers() {
    let h = req(
        "GET /a/b?c=1 HTTP/1.1\r\nHost: api.example.com\r\nUser-Agent: curl/8\r\nContent-Length: 0\r\n\r\n",
    );
    assert_eq!(request_line(&h), ("GET", "/a/b?c=1", "1.1"));
    assert_eq!(h.headers.host.as_deref(), Some("api.example.com"));
    assert_eq!(h.headers.user_agent.as_deref(), Some("curl/8"));
    assert_eq!(h.headers.content_length, Some(0));
    assert_eq!(h.warning, None);
}

#[test]
fn bare_lf_line_endings_and_header_names_any_case() {
    let h = req("POST /x HTTP/1.0\nhOsT: h\ncontent-LENGTH: 12\n\n");
    assert_eq!(request_line(&h), ("POST", "/x", "1.0"));
    assert_eq!(h.headers.host.as_deref(), Some("h"));
    assert_eq!(h.headers.content_length, Some(12));
}

#[test]
fn http09_simple_request_any_method_token() {
    assert_eq!(
        request_line(&req("GET /index.html\r\n")),
        ("GET", "/index.html", "0.9")
    );
    assert_eq!(
        request_line(&req("CCM_POST /HTTP/1.1\n")),
        ("CCM_POST", "/HTTP/1.1", "0.9")
    );
    // Not HTTP/0.9: no origin-form target, or more than one word.
    assert!(parse_head(Role::Request, b"GET\r\n").is_err());
    assert!(parse_head(Role::Request, b"HELLO world\r\n").is_err());
    assert!(parse_head(Role::Request, b"GET /a b\r\n").is_err());
}

#[test]
fn target_with_spaces_is_kept_whole_and_missing_target_is_empty() {
    let h = req("CONNECT mail.example:25 / HTTP/1.0\r\n\r\n");
    assert_eq!(request_line(&h), ("CONNECT", "mail.example:25 /", "1.0"));
    let h = req("OPTIONS HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(request_line(&h), ("OPTIONS", "", "1.1"));
}

#[test]
fn obsolete_line_folding_joins_the_value() {
    let h = req("GET / HTTP/1.1\r\nUser-Agent: one\r\n  two\r\n\tthree\r\nHost: h\r\n\r\n");
    assert_eq!(h.headers.user_agent.as_deref(), Some("one two three"));
    assert_eq!(h.headers.host.as_deref(), Some("h"));
}

#[test]
fn content_length_rules() {
    // Same value twice is fine (RFC 9110 §8.6); different values are not.
    let h = req("POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n");
    assert_eq!((h.headers.content_length, h.warning), (Some(5), None));
    let h = req("POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n");
    assert_eq!(h.headers.content_length, None);
    assert_eq!(h.warning, Some(ParseError::BadContentLength));
    for bad in [
        "-1",
        "1e3",
        "0x10",
        "",
        "18446744073709551615",
        "99999999999999999999999",
    ] {
        let h = req(&format!("POST / HTTP/1.1\r\nContent-Length: {bad}\r\n\r\n"));
        assert_eq!(h.headers.content_length, None, "{bad}");
        assert!(h.headers.content_length_invalid, "{bad}");
    }
    // A list of equal values is that value (servers that merge fields accept it);
    // a list that differs, or has an empty member, is invalid.
    let h = req("POST / HTTP/1.1\r\nContent-Length: 20, 20\r\n\r\n");
    assert_eq!((h.headers.content_length, h.warning), (Some(20), None));
    let h = req("POST / HTTP/1.1\r\nContent-Length: 20,20,20\r\nContent-Length: 20\r\n\r\n");
    assert_eq!((h.headers.content_length, h.warning), (Some(20), None));
    let h = req("POST / HTTP/1.1\r\nContent-Length: 20, ,20,\r\n\r\n");
    assert_eq!((h.headers.content_length, h.warning), (Some(20), None));
    for bad in ["20, 21", "20, x", ","] {
        let h = req(&format!("POST / HTTP/1.1\r\nContent-Length: {bad}\r\n\r\n"));
        assert_eq!(h.warning, Some(ParseError::BadContentLength), "{bad}");
    }
    let h = req("POST / HTTP/1.1\r\nContent-Length: 007\r\n\r\n");
    assert_eq!(h.headers.content_length, Some(7));
    let h = req("POST / HTTP/1.1\r\nContent-Length: 9223372036854775807\r\n\r\n");
    assert_eq!(h.headers.content_length, Some(i64::MAX as u64));
}

#[test]
fn transfer_encoding_chunked_only_as_final_coding_and_te_cl_flagged() {
    let h = req("POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n");
    assert!(h.headers.chunked && h.headers.transfer_encoding);
    let h = req("POST / HTTP/1.1\r\nTransfer-Encoding: chunked, gzip\r\n\r\n");
    assert!(!h.headers.chunked && h.headers.transfer_encoding);
    let h = req("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n");
    assert_eq!(h.warning, Some(ParseError::TeAndCl));
}

#[test]
fn header_count_limit_is_reported_not_fatal() {
    let mut block = String::from("GET / HTTP/1.1\r\n");
    for i in 0..MAX_HEADERS + 10 {
        block.push_str(&format!("X-{i}: v\r\n"));
    }
    block.push_str("\r\n");
    let h = req(&block);
    assert!(h.headers.overflow);
    assert_eq!(h.warning, Some(ParseError::TooManyHeaders));
}

#[test]
fn header_line_without_colon_is_a_warning() {
    let h = req("GET / HTTP/1.1\r\nnonsense\r\nHost: h\r\n\r\n");
    assert_eq!(h.warning, Some(ParseError::BadHeaderLine));
    assert_eq!(h.headers.host.as_deref(), Some("h"));
}

/// The reason phrase is the server's text, kept as sent and bounded: it reaches the
/// zeek form's `status_msg`.
#[test]
fn reason_phrases() {
    let long = format!("HTTP/1.1 200 {}\r\n\r\n", "x".repeat(10_000));
    let cut = "x".repeat(MAX_REASON);
    let utf8_cut = format!("HTTP/1.1 200 {}é\r\n\r\n", "y".repeat(MAX_REASON - 1));
    let cases: &[(&[u8], &str)] = &[
        (b"HTTP/1.1 200 OK\r\n\r\n", "OK"),
        (b"HTTP/1.1 206 Partial Content\r\n\r\n", "Partial Content"),
        (b"HTTP/1.1 200\r\n\r\n", ""),
        (b"HTTP/1.1 200 \r\n\r\n", ""),
        // Trailing whitespace goes with the line's (Zeek would keep it).
        (b"HTTP/1.1 200 \t ok \r\n\r\n", "ok"),
        (
            b"HTTP/1.0 501 Unsupported method ('POST')\n\n",
            "Unsupported method ('POST')",
        ),
        (b"HTTP/1.1 200 \xff\xfe\r\n\r\n", "\u{fffd}\u{fffd}"),
        (long.as_bytes(), &cut),
        (
            utf8_cut.as_bytes(),
            &format!("{}\u{fffd}", "y".repeat(MAX_REASON - 1)),
        ),
    ];
    for (line, want) in cases {
        let h = parse_head(Role::Response, line).unwrap();
        let StartLine::Response { reason, .. } = h.start else {
            panic!("not a response");
        };
        assert_eq!(reason, *want, "{}", String::from_utf8_lossy(line));
        assert!(reason.len() <= MAX_REASON + 3);
    }
}

#[test]
fn status_lines() {
    let h = parse_head(Role::Response, b"HTTP/1.1 404 Not Found\r\n\r\n").unwrap();
    assert_eq!(
        h.start,
        StartLine::Response {
            version: "1.1".into(),
            status: 404,
            reason: "Not Found".into(),
        }
    );
    let h = parse_head(Role::Response, b"HTTP/1.0 200\r\n\r\n").unwrap();
    assert_eq!(
        h.start,
        StartLine::Response {
            version: "1.0".into(),
            status: 200,
            reason: "".into(),
        }
    );
    for bad in [
        "HTTP/1.1 099 Low\r\n\r\n",
        "HTTP/1.1 000\r\n\r\n",
        "HTTP/1.1 20 OK\r\n\r\n",
        "HTTP/1.1 OK\r\n\r\n",
        "HTTQ/1.1 200 OK\r\n\r\n",
        "HTTP/\r\n\r\n",
    ] {
        assert_eq!(
            parse_head(Role::Response, bad.as_bytes()).unwrap_err(),
            ParseError::BadStartLine,
            "{bad}"
        );
    }
}

#[test]
fn chunked_body_with_extensions_and_trailers_in_any_split() {
    let msg = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\
        5;ext=1\r\nhello\r\n7\r\n, world\r\n0\r\nX-Trailer: t\r\nX-Other: o\r\n\r\n";
    for piece in [1, 2, 3, 7, 64, msg.len()] {
        let (heads, body, errors) = read_all(Role::Response, msg, piece, Framing::Chunked);
        assert_eq!(heads.len(), 1, "piece {piece}");
        assert_eq!(body, b"hello, world", "piece {piece}");
        assert!(errors.is_empty(), "piece {piece}: {errors:?}");
    }
}

#[test]
fn bad_chunk_size_is_an_error_and_the_reader_recovers_at_the_next_message() {
    let msg = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nfoo\r\nHTTP/1.1 204 No Content\r\n\r\n";
    let (heads, _, errors) = read_all(Role::Response, msg, 5, Framing::Chunked);
    assert!(errors.contains(&ParseError::BadChunkSize), "{errors:?}");
    assert_eq!(heads.len(), 2);
}

#[test]
fn head_split_across_many_calls_and_leading_empty_lines() {
    let msg = b"\r\n\r\nGET /split HTTP/1.1\r\nHost: h\r\n\r\n";
    for piece in 1..msg.len() {
        let (heads, _, errors) = read_all(Role::Request, msg, piece, Framing::None);
        assert_eq!(heads.len(), 1, "piece {piece}");
        assert!(errors.is_empty());
        assert_eq!(request_line(&heads[0]).1, "/split");
    }
}

#[test]
fn oversized_head_is_rejected_without_growing_the_buffer() {
    // Many short fields past the limit: reported, flagged, memory bounded, and the
    // known fields after the padding still count.
    let mut msg = b"GET / HTTP/1.1\r\n".to_vec();
    while msg.len() < MAX_HEAD_BYTES * 2 {
        msg.extend_from_slice(b"X-Filler: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n");
    }
    msg.extend_from_slice(b"Host: late.example\r\n\r\n");
    let mut r = MessageReader::new(Role::Request);
    let mut heads = Vec::new();
    for chunk in msg.chunks(1000) {
        let mut data = chunk;
        loop {
            match r.step(&mut data) {
                Step::NeedMore if data.is_empty() => break,
                Step::Head(h) => {
                    heads.push(h);
                    r.set_framing(Framing::None);
                }
                Step::Error(e) => panic!("{e:?}"),
                _ => {}
            }
        }
        assert!(r.buf.len() <= MAX_HEAD_BYTES);
        assert!(
            r.over
                .as_ref()
                .is_none_or(|o| o.line.len() <= MAX_KEPT_LINE)
        );
    }
    assert_eq!(heads.len(), 1);
    let h = &heads[0];
    assert!(h.headers.oversized && h.headers.overflow);
    assert_eq!(h.warning, Some(ParseError::HeadTooLarge));
    assert_eq!(h.headers.host.as_deref(), Some("late.example"));
}

/// A login padded with one huge header, before or after the fields that matter.
fn padded_login(pad: usize, pad_first: bool) -> Vec<u8> {
    let body = br#"{"username":"admin","password":"x"}"#;
    let pad_line = format!("X-Pad: {}\r\n", "a".repeat(pad));
    let fields = format!(
        "Host: api\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
        body.len()
    );
    let mut m = b"POST /api/login HTTP/1.1\r\n".to_vec();
    if pad_first {
        m.extend_from_slice(pad_line.as_bytes());
        m.extend_from_slice(fields.as_bytes());
    } else {
        m.extend_from_slice(fields.as_bytes());
        m.extend_from_slice(pad_line.as_bytes());
    }
    m.extend_from_slice(b"\r\n");
    m.extend_from_slice(body);
    m.extend_from_slice(b"GET /next HTTP/1.1\r\nHost: api\r\n\r\n");
    m
}

#[test]
fn padded_heads_are_still_messages_in_any_segmentation() {
    for pad in [70_000, 900_000] {
        for pad_first in [true, false] {
            let msg = padded_login(pad, pad_first);
            for piece in [1, 7, 1460, 65_536, msg.len()] {
                if piece == 1 && pad > 100_000 {
                    continue; // slow in debug builds, same path as 7
                }
                let (heads, body, errors) = read_framed(Role::Request, &msg, piece, |h| {
                    Framing::Length(h.headers.content_length.unwrap_or(0))
                });
                let what = format!("pad {pad} first {pad_first} piece {piece}");
                assert!(errors.is_empty(), "{what}: {errors:?}");
                assert_eq!(heads.len(), 2, "{what}");
                assert_eq!(
                    request_line(&heads[0]),
                    ("POST", "/api/login", "1.1"),
                    "{what}"
                );
                assert!(heads[0].headers.oversized, "{what}");
                assert_eq!(
                    heads[0].headers.content_type.as_deref(),
                    Some("application/json"),
                    "{what}"
                );
                assert_eq!(body, br#"{"username":"admin","password":"x"}"#, "{what}");
                assert_eq!(request_line(&heads[1]), ("GET", "/next", "1.1"), "{what}");
                assert!(!heads[1].headers.oversized);
            }
        }
    }
}

#[test]
fn an_oversized_request_line_keeps_its_method_path_and_version() {
    let target = format!("/search?q={}", "x".repeat(100_000));
    let msg = format!("GET {target} HTTP/1.1\r\nHost: api\r\n\r\n");
    let (heads, _, errors) = read_all(Role::Request, msg.as_bytes(), 4096, Framing::None);
    assert!(errors.is_empty(), "{errors:?}");
    let (m, uri, v) = request_line(&heads[0]);
    assert_eq!((m, v), ("GET", "1.1"));
    assert!(
        uri.starts_with("/search?q=xxx") && uri.len() < MAX_KEPT_LINE,
        "{}",
        uri.len()
    );
    assert_eq!(heads[0].headers.host.as_deref(), Some("api"));
}

#[test]
fn a_never_ending_head_is_reported_when_the_stream_ends() {
    let mut r = MessageReader::new(Role::Request);
    let mut data: &[u8] = b"POST /api/login HTTP/1.1\r\nAuthorization: Basic YTpi\r\nX-Pad: ";
    assert_eq!(r.step(&mut data), Step::NeedMore);
    let pad = vec![b'a'; 1 << 20];
    for _ in 0..10 {
        let mut d = &pad[..];
        while !d.is_empty() {
            assert_eq!(r.step(&mut d), Step::NeedMore);
        }
    }
    match r.finish() {
        Finish::Head(h) => {
            assert_eq!(request_line(&h).0, "POST");
            assert!(h.headers.oversized);
            assert!(h.headers.authorization.is_some());
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn garbage_before_a_request_is_skipped_to_the_next_known_method() {
    let msg = b"\x16\x03\x01garbage\r\nmore junk\r\nGET /after HTTP/1.1\r\n\r\n";
    let (heads, _, errors) = read_all(Role::Request, msg, 4, Framing::None);
    assert_eq!(errors.first(), Some(&ParseError::NotHttp));
    assert_eq!(heads.len(), 1);
    assert_eq!(request_line(&heads[0]).1, "/after");
}

#[test]
fn midstream_reader_waits_for_a_line_that_starts_a_message() {
    let mut r = MessageReader::new(Role::Response);
    r.start_midstream();
    let mut data: &[u8] = b"tail of some body\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
    let mut heads = 0;
    loop {
        match r.step(&mut data) {
            Step::NeedMore if data.is_empty() => break,
            Step::Head(_) => {
                heads += 1;
                r.set_framing(Framing::None);
            }
            Step::Error(e) => panic!("unexpected {e:?}"),
            _ => {}
        }
    }
    assert_eq!(heads, 1);
    assert_eq!(r.resync_skipped, b"tail of some body\r\n".len() as u64);
}

#[test]
fn gap_inside_a_body_is_absorbed_and_inside_a_head_resyncs() {
    let mut r = MessageReader::new(Role::Request);
    let mut data: &[u8] = b"POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc";
    while !data.is_empty() {
        if let Step::Head(_) = r.step(&mut data) {
            r.set_framing(Framing::Length(10));
        }
    }
    assert_eq!(
        r.gap(4),
        None,
        "a gap inside a known-length body loses nothing but bytes"
    );
    let mut rest: &[u8] = b"xyz";
    assert_eq!(r.step(&mut rest), Step::Body(b"xyz"));
    assert_eq!(r.step(&mut rest), Step::End);

    let mut r = MessageReader::new(Role::Request);
    let mut data: &[u8] = b"GET /partial HTTP/1.1\r\nHo";
    assert_eq!(r.step(&mut data), Step::NeedMore);
    assert_eq!(r.gap(100), Some(ParseError::Gap));
    let mut data: &[u8] = b"st: lost\r\n\r\nGET /next HTTP/1.1\r\n\r\n";
    let mut uris = Vec::new();
    loop {
        match r.step(&mut data) {
            Step::NeedMore if data.is_empty() => break,
            Step::Head(h) => {
                uris.push(request_line(&h).1.to_string());
                r.set_framing(Framing::None);
            }
            _ => {}
        }
    }
    assert_eq!(uris, ["/next"]);
}

#[test]
fn finish_reports_truncation_and_unterminated_heads() {
    let mut r = MessageReader::new(Role::Response);
    let mut data: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort";
    while !data.is_empty() {
        if let Step::Head(_) = r.step(&mut data) {
            r.set_framing(Framing::Length(100));
        }
    }
    assert!(matches!(r.finish(), Finish::Truncated));

    // A close-delimited body ends cleanly at the close.
    let mut r = MessageReader::new(Role::Response);
    let mut data: &[u8] = b"HTTP/1.0 200 OK\r\n\r\nuntil close";
    while !data.is_empty() {
        if let Step::Head(_) = r.step(&mut data) {
            r.set_framing(Framing::UntilClose);
        }
    }
    assert!(matches!(r.finish(), Finish::Complete));

    // A head cut off before its empty line is still a head.
    let mut r = MessageReader::new(Role::Request);
    let mut data: &[u8] = b"GET /cut HTTP/1.1\r\nHost: h\r\n";
    let _ = r.step(&mut data);
    assert!(matches!(r.finish(), Finish::Head(_)));
}

#[test]
fn tunnel_framing_ignores_everything_after() {
    let mut r = MessageReader::new(Role::Response);
    let mut data: &[u8] =
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n\x81\x05hello";
    loop {
        match r.step(&mut data) {
            Step::Head(_) => r.set_framing(Framing::Tunnel),
            Step::NeedMore if data.is_empty() => break,
            Step::Error(e) => panic!("{e:?}"),
            _ => {}
        }
    }
    assert!(r.is_ignoring());
}

#[test]
fn every_error_has_a_distinct_label() {
    let mut labels: Vec<&str> = ParseError::ALL.iter().map(|e| e.label()).collect();
    for (i, e) in ParseError::ALL.iter().enumerate() {
        assert_eq!(e.index(), i);
    }
    labels.sort();
    labels.dedup();
    assert_eq!(labels.len(), ParseError::ALL.len());
}

#[test]
fn resync_finds_a_message_glued_to_the_end_of_a_lost_body() {
    // After a gap the reader is lost inside a binary body; the next response follows
    // the body's last byte directly, not at a line start.
    let mut r = MessageReader::new(Role::Response);
    r.start_midstream();
    let mut data: &[u8] =
        b"\x00\x9f\x13binary tailHTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n";
    let mut statuses = Vec::new();
    loop {
        match r.step(&mut data) {
            Step::NeedMore if data.is_empty() => break,
            Step::Head(h) => {
                if let StartLine::Response { status, .. } = h.start {
                    statuses.push(status);
                }
                r.set_framing(Framing::None);
            }
            _ => {}
        }
    }
    assert_eq!(statuses, [404]);

    let mut r = MessageReader::new(Role::Request);
    r.start_midstream();
    let mut data: &[u8] = b"{\"user\":\"x\"}POST /api/login HTTP/1.1\r\nContent-Length: 0\r\n\r\n";
    let mut uris = Vec::new();
    loop {
        match r.step(&mut data) {
            Step::NeedMore if data.is_empty() => break,
            Step::Head(h) => {
                let (method, uri, _) = request_line(&h);
                uris.push(format!("{method} {uri}"));
                r.set_framing(Framing::None);
            }
            _ => {}
        }
    }
    assert_eq!(uris, ["POST /api/login"]);
}

#[test]
fn embedded_start_needs_the_whole_start_line_shape() {
    assert_eq!(
        embedded_start(Role::Response, b"xxHTTP/1.1 200 OK"),
        Some(2)
    );
    assert_eq!(embedded_start(Role::Response, b"xxHTTP/1.1 abc"), None);
    assert_eq!(embedded_start(Role::Response, b"see HTTP/1.x spec"), None);
    assert_eq!(embedded_start(Role::Response, b"tail bytes HTT"), Some(11));
    assert_eq!(
        embedded_start(Role::Request, b"}]GET /a HTTP/1.1\r\n"),
        Some(2)
    );
    assert_eq!(
        embedded_start(Role::Request, b"xPROPFIND /a HTTP/1.1"),
        Some(1)
    );
    assert_eq!(embedded_start(Role::Request, b"FOO /a HTTP/1.1"), None);
    assert_eq!(embedded_start(Role::Request, b"GET  HTTP/1.1"), None);
}

#[test]
fn long_forwarding_chains_keep_their_last_hops() {
    // The attacker's 4 KB chain comes first; the trusted proxy's hop last, on its
    // own line. Keeping the first 4 KB used to drop the proxy's hop.
    let padding = "198.51.100.7, ".repeat(400);
    let h = req(&format!(
        "GET / HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: {padding}6.6.6.6\r\nX-Forwarded-For: 203.0.113.9\r\n\r\n"
    ));
    let xff = h.headers.x_forwarded_for.unwrap();
    assert!(
        xff.ends_with("6.6.6.6, 203.0.113.9"),
        "{}",
        &xff[xff.len() - 40..]
    );
    assert!(xff.len() <= 4096);
    assert!(xff.starts_with(|c: char| c == ' ' || c.is_ascii_digit()));
    // One line longer than the cap keeps its end too.
    let h = req(&format!(
        "GET / HTTP/1.1\r\nForwarded: {}for=203.0.113.9\r\n\r\n",
        "for=1.2.3.4, ".repeat(500)
    ));
    assert!(h.headers.forwarded.unwrap().ends_with("for=203.0.113.9"));
}

/// Parsing at the newlines the end-of-head search noted gives what a fresh split
/// gives: CRLF and bare LF lines, folded lines, more lines than are noted, and
/// HTTP/0.9 requests.
#[test]
fn heads_split_at_noted_newlines_parse_as_heads_split_afresh() {
    let many: String = (0..60).map(|i| format!("X-Pad-{i}: v{i}\r\n")).collect();
    let heads = [
        (
            Role::Request,
            "GET /a HTTP/1.1\r\nHost: h\r\nUser-Agent: ua\r\n\r\n".to_string(),
        ),
        (
            Role::Request,
            "POST /l HTTP/1.0\nHost: h\nContent-Length: 3\n\n".to_string(),
        ),
        (
            Role::Request,
            "GET /x HTTP/1.1\r\nHost: a\r\n folded\r\nAccept: */*\n\r\n".to_string(),
        ),
        (
            Role::Request,
            format!("GET /m HTTP/1.1\r\n{many}Host: late\r\nX-Api-Key: k\r\n\r\n"),
        ),
        (Role::Request, "GET /old\r\n".to_string()),
        (
            Role::Response,
            "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 5\r\n\r\n".to_string(),
        ),
        (
            Role::Response,
            format!("HTTP/1.1 302 Found\r\n{many}Location: /next\r\n\r\n"),
        ),
    ];
    for (role, text) in heads {
        let mut nl = Newlines::default();
        let end = head_end_noting(role, text.as_bytes(), &mut nl).expect("a whole head");
        assert_eq!(end, text.len(), "{text:?}");
        assert!(nl.n > 0, "{text:?}");
        let noted = parse_head_split(role, text.as_bytes(), &nl);
        let fresh = parse_head(role, text.as_bytes());
        assert_eq!(noted, fresh, "{text:?}");
        assert!(fresh.is_ok(), "{text:?}");
    }
}

#[test]
fn request_version_fast_path_answers_as_the_general_scan() {
    // The general scan, as it was before the fast path.
    let general = |line: &[u8]| -> Option<(usize, Vec<u8>)> {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let line = trim_end(line);
        let sp = line.iter().rposition(|b| *b == b' ')?;
        let word = &line[sp + 1..];
        (word.len() >= 6 && word[..5].eq_ignore_ascii_case(b"HTTP/"))
            .then(|| (sp, word[5..].to_vec()))
    };
    for line in [
        &b"GET / HTTP/1.1"[..],
        b"GET / HTTP/1.1\r",
        b"GET /a HTTP/1.0  ",
        b"GET / http/1.1",
        b"GET /a HTTP/2",
        b"GET / HTTP/1 1",
        b"GET / HTTP/1.\t",
        b" HTTP/1.1",
        b"HTTP/1.1",
        b"GET /x HTTP/1.1 HTTP/1.1",
        b"GET /x  HTTP/1.1",
        b"",
        b"\r",
    ] {
        let got = request_version(line).map(|(sp, v)| (sp, v.to_vec()));
        assert_eq!(got, general(line), "{:?}", String::from_utf8_lossy(line));
    }
}

/// Referer, Origin and Zeek's proxy headers are kept apart (boxed), bounded in
/// number; a head without them allocates nothing for them.
#[test]
fn zeek_request_fields() {
    let h = parse_head(
        Role::Request,
        b"GET / HTTP/1.1\r\nReferer: http://a.example/x\r\nORIGIN: http://a.example\r\nVia: 1.1 p\r\nProxy-Connection: keep-alive\r\n\r\n",
    )
    .unwrap();
    let x = h.headers.extra.as_deref().expect("extra fields");
    assert_eq!(x.referrer.as_deref(), Some("http://a.example/x"));
    assert_eq!(x.origin.as_deref(), Some("http://a.example"));
    assert_eq!(
        x.proxied,
        [
            (ProxyHeader::Via, "1.1 p".into()),
            (ProxyHeader::ProxyConnection, "keep-alive".into())
        ]
    );
    let plain = parse_head(Role::Request, b"GET / HTTP/1.1\r\nHost: h\r\n\r\n").unwrap();
    assert!(plain.headers.extra.is_none());
    let many = format!("GET / HTTP/1.1\r\n{}\r\n", "Via: p\r\n".repeat(1000));
    let h = parse_head(Role::Request, many.as_bytes()).unwrap();
    assert_eq!(h.headers.extra.unwrap().proxied.len(), MAX_PROXIED);
}
