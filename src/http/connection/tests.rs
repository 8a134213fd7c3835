use std::net::{IpAddr, Ipv4Addr};

use super::*;

fn conn() -> Connection {
    Connection::new(
        Endpoints {
            client_ip: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
            client_port: 40000,
            server_ip: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)),
            server_port: 80,
        },
        false,
    )
}

/// A conversation script: `C` lines are client bytes, `S` lines server bytes, each at
/// its own time (ms). Ends both directions and flushes.
fn run(script: &[(char, &[u8])]) -> (Vec<Exchange>, HttpStats) {
    let mut c = conn();
    let mut out = Vec::new();
    for (i, (side, bytes)) in script.iter().enumerate() {
        let ts = (i as u64 + 1) * 1_000_000;
        match side {
            'C' => c.client_data(bytes, ts, &mut out),
            'S' => c.server_data(bytes, ts, &mut out),
            _ => unreachable!(),
        }
    }
    c.end(true, 1_000_000_000, &mut out);
    c.end(false, 1_000_000_000, &mut out);
    c.flush(&mut out);
    (out, c.stats)
}

fn brief(x: &Exchange) -> String {
    format!(
        "{} {} {} {:?} {:?}",
        x.trans_depth,
        x.method.as_deref().unwrap_or("-"),
        x.uri.as_deref().unwrap_or("-"),
        x.status,
        x.response_body_len
    )
}

fn briefs(v: &[Exchange]) -> Vec<String> {
    v.iter().map(brief).collect()
}

#[test]
fn pipelined_requests_pair_in_order() {
    let (out, stats) = run(&[
        ('C', b"GET /1 HTTP/1.1\r\nHost: h\r\n\r\nGET /2 HTTP/1.1\r\nHost: h\r\n\r\nPOST /3 HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc"),
        ('S', b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"),
        ('S', b"HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n4\r\ndone\r\n0\r\n\r\n"),
    ]);
    assert_eq!(
        briefs(&out),
        [
            "1 GET /1 Some(200) Some(2)",
            "2 GET /2 Some(404) Some(0)",
            "3 POST /3 Some(201) Some(4)"
        ]
    );
    assert_eq!(out[2].request_body_len, 3);
    assert_eq!(out[2].request_body_prefix, b"abc");
    assert_eq!((stats.requests, stats.responses), (3, 3));
    assert!(out.iter().all(|x| !x.incomplete));
}

#[test]
fn response_time_is_request_start_to_response_start() {
    let (out, _) = run(&[
        ('C', b"GET / HTTP/1.1\r\n\r\n"),
        ('C', b""),
        ('S', b"HTTP/1.1 204 No Content\r\n\r\n"),
    ]);
    assert_eq!(out[0].response_time_ns(), Some(2_000_000));
}

#[test]
fn bodiless_responses_head_204_304_and_1xx() {
    let (out, _) = run(&[
        ('C', b"HEAD /h HTTP/1.1\r\n\r\nGET /n HTTP/1.1\r\n\r\nGET /c HTTP/1.1\r\n\r\nGET /last HTTP/1.1\r\n\r\n"),
        // HEAD's Content-Length describes the GET body it would have had.
        ('S', b"HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n"),
        ('S', b"HTTP/1.1 204 No Content\r\nContent-Length: 10\r\n\r\n"),
        ('S', b"HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n"),
        ('S', b"HTTP/1.1 103 Early Hints\r\nLink: </s.css>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx"),
    ]);
    assert_eq!(
        briefs(&out),
        [
            "1 HEAD /h Some(200) Some(0)",
            "2 GET /n Some(204) Some(0)",
            "3 GET /c Some(304) Some(0)",
            "4 GET /last Some(200) Some(1)"
        ]
    );
}

#[test]
fn expect_100_continue() {
    let (out, stats) = run(&[
        (
            'C',
            b"POST /up HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n",
        ),
        ('S', b"HTTP/1.1 100 Continue\r\n\r\n"),
        ('C', b"data"),
        ('S', b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n"),
    ]);
    assert_eq!(briefs(&out), ["1 POST /up Some(201) Some(0)"]);
    assert_eq!(out[0].request_body_len, 4);
    // Response time counts from the first byte of any response, the 100 included.
    assert_eq!(out[0].response_time_ns(), Some(1_000_000));
    assert_eq!(stats.responses, 1);
    // The final answer's phrase and version; the interim one is kept beside it.
    assert_eq!(out[0].status_msg.as_deref(), Some("Created"));
    assert_eq!(out[0].response_version.as_deref(), Some("1.1"));
    assert_eq!(out[0].interim.as_deref(), Some(&(100, "Continue".into())));
}

/// Each answer keeps its own phrase and version, whatever the request's version.
#[test]
fn reason_phrase_and_response_version_per_exchange() {
    let (out, _) = run(&[
        ('C', b"GET /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\n\r\n"),
        (
            'S',
            b"HTTP/1.0 404 Nicht gefunden\r\nContent-Length: 0\r\n\r\nHTTP/1.1 200\r\nContent-Length: 0\r\n\r\n",
        ),
    ]);
    let got: Vec<_> = out
        .iter()
        .map(|x| {
            (
                x.version.as_deref(),
                x.response_version.as_deref(),
                x.status_msg.as_deref(),
                x.interim.as_deref().cloned(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (Some("1.1"), Some("1.0"), Some("Nicht gefunden"), None),
            (Some("1.1"), Some("1.1"), Some(""), None),
        ]
    );
}

#[test]
fn upgrade_101_stops_parsing_both_directions() {
    let (out, stats) = run(&[
        (
            'C',
            b"GET /ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
        ),
        (
            'S',
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n\x81\x02hi",
        ),
        ('C', b"\x81\x82GET / HTTP/1.1\r\n\r\n"),
        ('S', b"HTTP/1.1 200 OK\r\n\r\n"),
    ]);
    assert_eq!(briefs(&out), ["1 GET /ws Some(101) Some(0)"]);
    assert_eq!(stats.requests, 1);
}

#[test]
fn connect_2xx_is_a_tunnel_but_4xx_is_not() {
    let (out, _) = run(&[
        ('C', b"CONNECT db.internal:5432 HTTP/1.1\r\n\r\n"),
        ('S', b"HTTP/1.1 200 Connection established\r\n\r\n"),
        ('C', b"\x16\x03\x01\x00\x05hello GET /x HTTP/1.1\r\n\r\n"),
        ('S', b"\x16\x03\x03 HTTP/1.1 200 OK\r\n\r\n"),
    ]);
    assert_eq!(
        briefs(&out),
        ["1 CONNECT db.internal:5432 Some(200) Some(0)"]
    );

    let (out, _) = run(&[
        ('C', b"CONNECT x:1 HTTP/1.1\r\n\r\nGET /next HTTP/1.1\r\n\r\n"),
        ('S', b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"),
    ]);
    assert_eq!(
        briefs(&out),
        [
            "1 CONNECT x:1 Some(403) Some(0)",
            "2 GET /next Some(200) Some(0)"
        ]
    );
}

#[test]
fn http10_close_delimited_body_ends_with_the_connection() {
    let (out, _) = run(&[
        ('C', b"GET /old HTTP/1.0\r\n\r\n"),
        (
            'S',
            b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nsome ",
        ),
        ('S', b"bytes"),
    ]);
    assert_eq!(briefs(&out), ["1 GET /old Some(200) Some(10)"]);
    assert!(!out[0].incomplete);
}

#[test]
fn http09_response_is_raw_bytes_until_close() {
    let (out, _) = run(&[('C', b"GET /zeek.html\n"), ('S', b"<html>hi</html>\n")]);
    assert_eq!(briefs(&out), ["1 GET /zeek.html None Some(16)"]);
    assert_eq!(out[0].version.as_deref(), Some("0.9"));
}

#[test]
fn request_only_and_response_only() {
    let (out, _) = run(&[('C', b"GET /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\n\r\n")]);
    assert_eq!(briefs(&out), ["1 GET /a None None", "2 GET /b None None"]);
    assert!(out.iter().all(|x| x.incomplete));

    let mut c = conn();
    let mut out = Vec::new();
    c.server_data(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 500 Oops\r\nContent-Length: 0\r\n\r\n", 5, &mut out);
    c.flush(&mut out);
    assert_eq!(
        briefs(&out),
        ["1 - - Some(200) Some(2)", "2 - - Some(500) Some(0)"]
    );
    assert_eq!(
        c.stats.parse_errors[ParseError::UnmatchedResponse.index()],
        2
    );
}

#[test]
fn garbled_request_still_reports_the_servers_answer() {
    let (out, stats) = run(&[
        ('C', b"GET/ HTTP/1.1\r\nHost: x\r\n\r\n"),
        (
            'S',
            b"HTTP/1.0 400 Bad Request\r\nContent-Length: 3\r\n\r\nbad",
        ),
    ]);
    assert_eq!(briefs(&out), ["1 - - Some(400) Some(3)"]);
    assert_eq!(stats.connections_not_http, 0);
}

#[test]
fn both_sides_not_http_gives_up() {
    let (out, stats) = run(&[
        ('C', b"SSH-2.0-OpenSSH_9.2p1\r\n"),
        ('S', b"SSH-2.0-OpenSSH_9.2p1 Debian\r\n"),
        ('C', b"GET /not-really HTTP/1.1\r\n\r\n"),
    ]);
    assert!(out.is_empty(), "{:?}", briefs(&out));
    assert_eq!(stats.connections_not_http, 1);
}

#[test]
fn gap_in_a_head_marks_the_exchange_and_parsing_resumes_at_the_next_request() {
    let mut c = conn();
    let mut out = Vec::new();
    c.client_data(
        b"POST /login HTTP/1.1\r\nContent-Length: 20\r\n\r\nuser=",
        1,
        &mut out,
    );
    c.server_data(b"HTTP/1.1 200 OK\r\nContent-Len", 2, &mut out);
    c.gap(false, 500);
    c.client_data(b"abcdefghijklmnoGET /next HTTP/1.1\r\n\r\n", 3, &mut out);
    c.server_data(
        b"xx\r\nHTTP/1.1 302 Found\r\nContent-Length: 0\r\n\r\n",
        4,
        &mut out,
    );
    c.flush(&mut out);
    // The first response's head was cut: answered, status unknown; the 302 is the
    // answer to the second request, not the first.
    assert_eq!(
        briefs(&out),
        [
            "1 POST /login None Some(0)",
            "2 GET /next Some(302) Some(0)"
        ]
    );
    assert!(out[0].incomplete);
    assert!(!out[1].incomplete);
    assert_eq!(c.stats.parse_errors[ParseError::Gap.index()], 1);
}

#[test]
fn gap_that_cuts_a_request_head_keeps_pairing_in_step() {
    let mut c = conn();
    let mut out = Vec::new();
    c.client_data(b"GET /a HTTP/1.1\r\n\r\nGET /b HTT", 1, &mut out);
    c.gap(true, 300);
    c.client_data(b"GET /c HTTP/1.1\r\n\r\n", 2, &mut out);
    c.server_data(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", 3, &mut out);
    c.server_data(b"HTTP/1.1 401 No\r\nContent-Length: 0\r\n\r\n", 4, &mut out);
    c.server_data(b"HTTP/1.1 404 No\r\nContent-Length: 0\r\n\r\n", 5, &mut out);
    c.flush(&mut out);
    assert_eq!(
        briefs(&out),
        [
            "1 GET /a Some(200) Some(0)",
            "2 - - Some(401) Some(0)",
            "3 GET /c Some(404) Some(0)"
        ]
    );
    assert!(out[1].incomplete);
}

#[test]
fn pending_requests_are_bounded() {
    let mut c = conn();
    let mut out = Vec::new();
    for i in 0..MAX_PENDING_TRANSACTIONS + 44 {
        c.client_data(
            format!("GET /{i} HTTP/1.1\r\n\r\n").as_bytes(),
            i as u64,
            &mut out,
        );
    }
    assert_eq!(out.len(), 44, "the oldest are emitted unanswered");
    assert_eq!(out[0].uri.as_deref(), Some("/0"));
    assert!(out[0].incomplete);
    assert_eq!(c.stats.parse_errors[ParseError::TooManyPending.index()], 44);
    c.flush(&mut out);
    assert_eq!(out.len(), MAX_PENDING_TRANSACTIONS + 44);
}

#[test]
fn request_body_prefix_is_bounded_and_the_length_counts_everything() {
    let mut c = conn();
    c.set_body_prefix_limit(8);
    let mut out = Vec::new();
    c.client_data(
        b"POST /big HTTP/1.1\r\nContent-Length: 100000\r\n\r\n",
        1,
        &mut out,
    );
    for _ in 0..100 {
        c.client_data(&[b'a'; 1000], 2, &mut out);
    }
    c.server_data(
        b"HTTP/1.1 413 Too Large\r\nContent-Length: 0\r\n\r\n",
        3,
        &mut out,
    );
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].request_body_len, 100_000);
    assert_eq!(out[0].request_body_prefix, b"aaaaaaaa");
}

#[test]
fn smuggling_shapes_do_not_hide_the_second_request() {
    // TE and CL together: chunked wins (RFC 9112 §6.3), the smuggled GET is seen.
    let (out, stats) = run(&[(
        'C',
        b"POST / HTTP/1.1\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\n\r\n",
    )]);
    assert_eq!(
        briefs(&out),
        ["1 POST / None None", "2 GET /smuggled None None"]
    );
    assert_eq!(stats.parse_errors[ParseError::TeAndCl.index()], 1);
}

/// A TLS 1.3 connection (hellos in clear, then records sealed with RFC 8448's
/// traffic secrets) with its secrets: the TLS record first, then the HTTP exchange
/// read from the decrypted records, marked decrypted.
#[test]
fn a_tls13_connection_with_its_secrets_is_read_as_http_after_its_record() {
    use crate::tls::decrypt::Outcome;
    use crate::tls::decrypt::tests::{S_AP, keylog13, seal13, unhex};
    let mut c = conn();
    c.set_keylog(keylog13());
    let mut out = Vec::new();
    tls13_until_request(&mut c, 1, &mut out);
    assert_eq!(out.len(), 1, "the record, once decryption has an outcome");
    let session = out[0].tls.as_deref().expect("the TLS record");
    assert_eq!(session.decryption, Some(Outcome::Decrypted));
    let response = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
    c.server_data(&seal13(&unhex(S_AP), 0, 23, response), 4, &mut out);
    assert_eq!(out.len(), 2);
    assert_eq!(brief(&out[1]), "1 GET /api/users Some(200) Some(2)");
    assert!(out[1].decrypted && !out[1].is_tls());
    assert!(!c.is_done(), "read to the end");
}

/// The hellos of the RFC 8448 connection, then the client's Finished and request
/// (`from` ns on): what a TLS 1.3 client sends before its first answer.
fn tls13_until_request(c: &mut Connection, from: Nanos, out: &mut Vec<Exchange>) {
    use crate::tls::decrypt::tests::{C_AP, C_HS, S_HS, finished, seal13, unhex};
    use crate::tls::tests::{client_hello_body, message, record, server_hello_body};
    c.client_data(&record(22, &message(1, &client_hello_body())), from, out);
    let mut s = record(22, &message(2, &server_hello_body(0x0304)));
    s.extend(seal13(&unhex(S_HS), 0, 22, &finished()));
    c.server_data(&s, from + 1, out);
    let mut client = record(20, &[1]);
    client.extend(seal13(&unhex(C_HS), 0, 22, &finished()));
    client.extend(seal13(
        &unhex(C_AP),
        0,
        23,
        b"GET /api/users HTTP/1.1\r\nHost: x\r\n\r\n",
    ));
    c.client_data(&client, from + 2, out);
}

/// A followed key file whose secrets arrive after the handshake: the connection
/// holds its records, and reads them all once the secrets are there.
#[test]
fn secrets_that_arrive_after_the_handshake_still_decrypt_when_the_key_file_is_followed() {
    use crate::tls::decrypt::Outcome;
    use crate::tls::decrypt::tests::{S_AP, keylog13, keylog13_text, seal13, unhex};
    let log = Arc::new(crate::tls::KeyLog::new());
    log.expect_more();
    let mut c = conn();
    c.set_keylog(Arc::clone(&log));
    let mut out = Vec::new();
    tls13_until_request(&mut c, 1_000, &mut out);
    assert!(out.is_empty(), "waiting for the secrets");
    // The secrets come (a follower reads them), then the answer.
    let all = keylog13();
    log.read(&keylog13_text());
    assert!(log.has_all(&[7; 32], true) && all.has_all(&[7; 32], true));
    let response = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
    c.server_data(&seal13(&unhex(S_AP), 0, 23, response), 2_000, &mut out);
    assert_eq!(out.len(), 2, "{out:?}");
    assert_eq!(
        out[0].tls.as_deref().unwrap().decryption,
        Some(Outcome::Decrypted)
    );
    assert_eq!(brief(&out[1]), "1 GET /api/users Some(200) Some(2)");
    assert!(out[1].decrypted);
    assert_eq!(out[1].ts, 1_002, "the request's own time");
}

/// Secrets that never come: after the wait the connection is read without them
/// (no_key), and its end also ends the wait.
#[test]
fn a_connection_waits_for_its_secrets_only_so_long() {
    use crate::tls::decrypt::Outcome;
    use crate::tls::decrypt::tests::{S_AP, seal13, unhex};
    use crate::tls::keylog::KEY_WAIT;
    for end in [false, true] {
        let log = Arc::new(crate::tls::KeyLog::new());
        log.expect_more();
        let mut c = conn();
        c.set_keylog(Arc::clone(&log));
        let mut out = Vec::new();
        tls13_until_request(&mut c, 1_000, &mut out);
        let response = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
        c.server_data(&seal13(&unhex(S_AP), 0, 23, response), 2_000, &mut out);
        assert!(out.is_empty());
        if end {
            c.flush(&mut out);
        } else {
            c.server_data(b"", 1_001 + KEY_WAIT + 1, &mut out);
            c.client_data(&[23, 3, 3, 0, 1, 0], 1_001 + KEY_WAIT + 1, &mut out);
        }
        assert!(!out.is_empty());
        assert_eq!(
            out[0].tls.as_deref().unwrap().decryption,
            Some(Outcome::NoKey)
        );
        assert!(out.iter().all(|e| e.is_tls()), "no exchange without keys");
    }
}

/// Records that do not open with the logged secrets: the record says so, no
/// exchange, and the connection is done (nothing more is reassembled).
#[test]
fn records_that_do_not_authenticate_end_decryption() {
    use crate::tls::decrypt::Outcome;
    use crate::tls::decrypt::tests::{C_AP, finished, keylog13, seal13, unhex};
    use crate::tls::tests::{client_hello_body, message, record, server_hello_body};
    let mut c = conn();
    c.set_keylog(keylog13());
    let mut out = Vec::new();
    c.client_data(&record(22, &message(1, &client_hello_body())), 1, &mut out);
    let mut s = record(22, &message(2, &server_hello_body(0x0304)));
    // Sealed with the wrong secret.
    s.extend(seal13(&unhex(C_AP), 0, 22, &finished()));
    c.server_data(&s, 2, &mut out);
    c.client_data(
        &seal13(&unhex(C_AP), 0, 23, b"GET / HTTP/1.1\r\n\r\n"),
        3,
        &mut out,
    );
    assert_eq!(out.len(), 1);
    let session = out[0].tls.as_deref().expect("the TLS record");
    assert_eq!(session.decryption, Some(Outcome::BadRecord));
    assert!(c.is_done());
    c.flush(&mut out);
    // Then, as for any connection nobody can read, the internal record of its
    // encrypted rest.
    assert_eq!(out.len(), 2);
    assert!(out[1].tls.as_deref().is_some_and(|s| s.closed.is_some()));
}

#[test]
fn sensitive_values_are_counted_across_segments_and_chunks_per_response() {
    use crate::sensitive::Outcome;
    let (out, _) = run(&[
        ('C', b"GET /a HTTP/1.1\r\nHost: h\r\n\r\nGET /b HTTP/1.1\r\nHost: h\r\n\r\nGET /c HTTP/1.1\r\nHost: h\r\n\r\nGET /d HTTP/1.1\r\nHost: h\r\n\r\nHEAD /e HTTP/1.1\r\nHost: h\r\n\r\n"),
        // Chunked, a card number cut by a chunk boundary and a segment boundary.
        ('S', b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n10\r\n{\"card\":\"4111 11\r\n"),
        ('S', b"b\r\n11 1111 111\r\n"),
        ('S', b"7\r\n1\",\"e\":\r\n13\r\n\"bob@example.org\"}\n\r\n0\r\n\r\n"),
        // Compressed: not scanned, whatever the bytes say.
        ('S', b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Encoding: gzip\r\nContent-Length: 16\r\n\r\n4111111111111111"),
        // A binary type.
        ('S', b"HTTP/1.1 200 OK\r\nContent-Type: image/png\r\nContent-Length: 16\r\n\r\n4111111111111111"),
        // No type: text by its bytes; its SSN ends the body.
        ('S', b"HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\n123-45-6789"),
        ('S', b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 16\r\n\r\n"),
    ]);
    let got: Vec<(Outcome, Option<[u32; 4]>)> = out
        .iter()
        .map(|e| (e.sensitive.outcome, e.sensitive.counts().map(|c| c.0)))
        .collect();
    assert_eq!(
        got,
        [
            (Outcome::Scanned, Some([1, 1, 0, 0])),
            (Outcome::Compressed, None),
            (Outcome::NotText, None),
            (Outcome::Scanned, Some([0, 0, 0, 1])),
            // HEAD: no body.
            (Outcome::None, None),
        ]
    );
}
