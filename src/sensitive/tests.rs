use super::*;

/// Counts of `body` scanned whole, after checking that every split into two and
/// three pieces, and byte by byte, counts the same.
fn counts(body: &str) -> [u32; 4] {
    let b = body.as_bytes();
    let whole = count(b).0;
    let scan = |pieces: &[&[u8]]| {
        let mut s = Scanner::new(MAX_PREFIX, Some("application/json"), false);
        for p in pieces {
            s.feed(p);
        }
        s.finish(true).counts.map_or([0; 4], |c| c.0)
    };
    for i in 0..=b.len() {
        assert_eq!(scan(&[&b[..i], &b[i..]]), whole, "split at {i}: {body}");
    }
    if b.len() <= 64 {
        for i in 0..=b.len() {
            for j in i..=b.len() {
                assert_eq!(
                    scan(&[&b[..i], &b[i..j], &b[j..]]),
                    whole,
                    "{i},{j}: {body}"
                );
            }
        }
    }
    let bytes: Vec<&[u8]> = b.chunks(1).collect();
    assert_eq!(scan(&bytes), whole, "byte by byte: {body}");
    whole
}

fn email(body: &str) -> u32 {
    counts(body)[EMAIL]
}
fn card(body: &str) -> u32 {
    counts(body)[CARD]
}
fn iban(body: &str) -> u32 {
    counts(body)[IBAN]
}
fn ssn(body: &str) -> u32 {
    counts(body)[NATIONAL_ID]
}

#[test]
fn counts_card_numbers_of_every_issuer() {
    for n in [
        "4111111111111111",
        "4012888888881881",
        "4222222222222",
        "5555555555554444",
        "5105105105105100",
        "2223003122003222",
        "378282246310005",
        "371449635398431",
        "6011111111111117",
        "6011000990139424",
        "3530111333300000",
        "3566002020360505",
        "30569309025904",
        "38520000023237",
    ] {
        assert_eq!(card(&format!(r#"{{"card":"{n}"}}"#)), 1, "{n}");
        assert_eq!(card(&format!(r#"{{"card":{n}}}"#)), 1, "{n} as a number");
        assert_eq!(card(n), 1, "{n} alone");
    }
}

#[test]
fn counts_grouped_card_numbers() {
    assert_eq!(card("card 4111 1111 1111 1111 on file"), 1);
    assert_eq!(card("4111-1111-1111-1111"), 1);
    assert_eq!(card("<td>3782 822463 10005</td>"), 1);
    assert_eq!(card("3056-930902-5904,"), 1);
    assert_eq!(card("4222 2222 2222 2."), 1);
    // A number before it, a space between: two numbers.
    assert_eq!(card("order 1234 4111111111111111"), 1);
    assert_eq!(card("qty 12 4111 1111 1111 1111"), 1);
    // Mixed separators or odd groups are not one number.
    assert_eq!(card("4111-1111 1111-1111"), 0);
    assert_eq!(card("41 11 11 11 11 11 11 11"), 0);
    assert_eq!(card("411111 1111111111"), 0);
}

#[test]
fn counts_several_values_in_csv_and_arrays() {
    let csv = "name,card,email\nann,4111111111111111,ann@example.com\nbob,5555555555554444,bob@example.org\n";
    assert_eq!(counts(csv), [2, 2, 0, 0]);
    assert_eq!(card("[4111111111111111,4012888888881881]"), 2);
    let xml = "<c><n>4111111111111111</n><m>a.b@c.io</m><i>DE89370400440532013000</i></c>";
    assert_eq!(counts(xml), [1, 1, 1, 0]);
}

#[test]
fn numbers_that_are_not_cards() {
    for body in [
        // Millisecond timestamps, ids, amounts.
        r#"{"ts":1700000000000,"id":1234567890123456}"#,
        r#"{"created":1735689600000}"#,
        // Luhn fails.
        "4111111111111112",
        "5555555555554445",
        // Issuer prefix or length wrong.
        "9111111111111111",
        "41111111111111111",
        "37828224631000",
        // Phone numbers.
        "+14155552671",
        "+1 415 555 2671",
        "(415) 555-2671",
        "1-800-555-0199",
        "+44 20 7946 0958",
        // Inside longer runs: UUIDs, hex, versions, decimals, words, paths.
        "123e4567-e89b-12d3-a456-426614174000",
        "v4111111111111111",
        "4111111111111111a",
        "x4111111111111111",
        "4111111111111111.5",
        "0.4111111111111111",
        "-4111111111111111",
        "4111111111111111-x",
        "id_4111111111111111",
        "4111111111111111_thumb.jpg",
        "4.1.1",
        "4111111111111111@example",
        "\u{e9}4111111111111111",
    ] {
        assert_eq!(card(body), 0, "{body}");
    }
    // A card in an e-mail's local part is the e-mail's.
    assert_eq!(counts("4111111111111111@example.com"), [1, 0, 0, 0]);
}

#[test]
fn counts_ibans() {
    for n in [
        "DE89370400440532013000",
        "GB82WEST12345698765432",
        "FR1420041010050500013M02606",
        "NL91ABNA0417164300",
        "NO9386011117947",
        "DE89 3704 0044 0532 0130 00",
        "GB82 WEST 1234 5698 7654 32",
        "FR14 2004 1010 0505 0001 3M02 606",
    ] {
        assert_eq!(iban(&format!(r#"{{"iban":"{n}"}}"#)), 1, "{n}");
        assert_eq!(iban(&format!("IBAN: {n}. Thanks")), 1, "{n} in text");
    }
    assert_eq!(iban("pay to DE89 3704 0044 0532 0130 00 TODAY"), 1);
}

#[test]
fn strings_that_are_not_ibans() {
    for body in [
        // Check digits wrong.
        "DE89370400440532013001",
        "GB83WEST12345698765432",
        // Length not the country's, or no such country.
        "DE8937040044053201300",
        "QQ89370400440532013000",
        // Lowercase, inside words, odd groups.
        "de89370400440532013000",
        "xDE89370400440532013000",
        "DE89370400440532013000x",
        "DE89 37040044 0532 0130 00",
        "ABCD1234EFGH5678IJKL",
    ] {
        assert_eq!(iban(body), 0, "{body}");
    }
}

#[test]
fn counts_social_security_numbers_the_ssa_issues() {
    assert_eq!(ssn(r#"{"ssn":"123-45-6789"}"#), 1);
    assert_eq!(ssn("SSN 078-05-1120, ok"), 1);
    assert_eq!(ssn("<ssn>899-99-9999</ssn>"), 1);
    for body in [
        "000-12-3456",
        "666-12-3456",
        "900-12-3456",
        "123-00-4567",
        "123-45-0000",
        "123456789",
        "123 45 6789",
        "123-45-67890",
        "1123-45-6789",
        "x123-45-6789",
        "123-45-6789-1",
        "123-45-6789x",
        "ref-123-45-6789",
        "2026-01-01",
        "555-123-4567",
    ] {
        assert_eq!(ssn(body), 0, "{body}");
    }
}

#[test]
fn counts_email_addresses() {
    for body in [
        r#"{"email":"john.doe@example.com"}"#,
        "a@b.co",
        "Contact: John.Doe+tag@Sub.Example.CO.uk.",
        "<a href=\"mailto:ops_team@corp-mail.example.net\">",
        "user%tag@example.io",
        "x@123.example.com",
    ] {
        assert_eq!(email(body), 1, "{body}");
    }
    assert_eq!(email("a@x.io, b@y.io; c@z.io"), 3);
}

#[test]
fn strings_that_are_not_email_addresses() {
    for body in [
        // Decided: no dot in the domain is no address on the Internet.
        "user@localhost",
        "user@10.0.0.1",
        "a@b.c",
        "a..b@example.com",
        ".a@example.com",
        "a.@example.com",
        "@example.com",
        "a@.example.com",
        "a@example..com",
        "a@-example.com",
        "a@example-.com",
        "a@example.com-",
        "a@b@example.com",
        "john%40example.com",
        "a@example.com_x",
        "a@example.com@x",
        "caf\u{e9}@example.com",
        "@handle 12",
    ] {
        assert_eq!(email(body), 0, "{body}");
    }
    let long = format!("{}@example.com", "a".repeat(65));
    assert_eq!(email(&long), 0);
    let ok = format!("{}@example.com", "a".repeat(64));
    assert_eq!(email(&ok), 1);
}

#[test]
fn a_mixed_body_counts_each_kind() {
    let body = r#"[{"id":17,"name":"Ann Lee","email":"ann.lee@example.com","card":"4111 1111 1111 1111","iban":"DE89370400440532013000","ssn":"123-45-6789","created":"2026-01-01T00:00:00Z","phone":"+1-415-555-2671"},{"id":18,"email":"bob@example.org","card":"5555555555554444","ts":1735689600000}]"#;
    assert_eq!(counts(body), [2, 2, 1, 1]);
}

#[test]
fn a_value_at_the_prefix_bound_is_cut() {
    let mut s = Scanner::new(20, Some("text/plain"), false);
    s.feed(b"card 4111111111111111 and more");
    assert!(s.finish(true).counts.is_none(), "cut at byte 20");
    let mut s = Scanner::new(21, Some("text/plain"), false);
    s.feed(b"card 4111111111111111");
    assert_eq!(s.finish(true).counts.map(|c| c.0), Some([0, 1, 0, 0]));
    // A body that ended early (a gap) does not count the value at its end.
    let mut s = Scanner::new(100, None, false);
    s.feed(b"card 4111111111111111");
    assert!(s.finish(false).counts.is_none());
}

#[test]
fn binary_bodies_and_types_are_not_scanned() {
    let mut s = Scanner::new(DEFAULT_PREFIX, Some("text/plain"), false);
    s.feed(b"4111111111111111 \x00\x01 5555555555554444");
    let f = s.finish(true);
    assert_eq!(f.outcome, Outcome::NotText);
    assert_eq!(
        f.counts.map(|c| c.0),
        Some([0, 1, 0, 0]),
        "counted before the NUL"
    );
    for ct in [
        "application/octet-stream",
        "image/png",
        "application/grpc",
        "application/x-protobuf",
    ] {
        let mut s = Scanner::new(DEFAULT_PREFIX, Some(ct), false);
        s.feed(b"4111111111111111");
        let f = s.finish(true);
        assert_eq!((f.outcome, f.counts), (Outcome::NotText, None), "{ct}");
    }
    let mut s = Scanner::new(DEFAULT_PREFIX, Some("application/json"), true);
    s.feed(b"4111111111111111");
    assert_eq!(s.finish(true).outcome, Outcome::Compressed);
    let mut s = Scanner::new(0, Some("application/json"), false);
    s.feed(b"4111111111111111");
    assert_eq!(s.finish(true), Found::default());
}

#[test]
fn textual_types() {
    for ct in [
        "application/json",
        "Application/JSON; charset=utf-8",
        "application/problem+json",
        "application/graphql-response+json",
        "application/xml",
        "application/atom+xml",
        "text/html; charset=UTF-8",
        "text/csv",
        "text/plain",
        "application/x-www-form-urlencoded",
        "application/x-ndjson",
    ] {
        assert!(is_textual(Some(ct)), "{ct}");
    }
    assert!(is_textual(None));
    for ct in [
        "application/octet-stream",
        "image/jpeg",
        "application/grpc+proto",
        "application/x-protobuf",
        "application/pdf",
        "multipart/form-data; boundary=x",
        "json",
    ] {
        assert!(!is_textual(Some(ct)), "{ct}");
    }
}

#[test]
fn totals_write_the_kinds_seen_only() {
    let mut t = Totals::default();
    assert!(t.is_empty());
    t.add(&Counts([2, 0, 1, 0]));
    t.add(&Counts([1, 0, 0, 0]));
    assert_eq!(
        serde_json::to_string(&t).unwrap(),
        r#"{"email":3,"iban":1}"#
    );
    let back: Totals = serde_json::from_str(r#"{"card":4}"#).unwrap();
    assert_eq!(back.card, 4);
}

#[test]
fn short_number_runs_and_words_next_to_values_change_nothing() {
    assert_eq!(card("2026-01-01 4111111111111111"), 1);
    assert_eq!(card("1 2 3 4 5 6 7 8 9 4111111111111111"), 1);
    assert_eq!(
        counts("12345678-4111 AB12, DE89370400440532013000 Ab 123-45-6789"),
        [0, 0, 1, 1]
    );
    assert_eq!(
        counts("A1 AB1 ABC1 AB12X DE89 3704 0044 0532 0130 00"),
        [0, 0, 1, 0]
    );
    assert_eq!(counts("12-34 a@b.io 99 x@y.io"), [2, 0, 0, 0]);
}

#[test]
fn the_word_test_finds_every_byte_that_may_matter() {
    for b in 0..=255u8 {
        let matters = CLASS[b as usize] & (DIGIT | UPPER | AT | BIN) != 0;
        for at in 0..8 {
            for fill in [b'a', b'"', 0xc3, b' '] {
                let mut w = [fill; 8];
                w[at] = b;
                let found = may_matter(u64::from_le_bytes(w));
                assert!(found || !matters, "byte {b:#x} at {at}");
                if !matches!(b, b'\t' | b'\n' | 0x0c | b'\r') {
                    assert_eq!(found, matters, "byte {b:#x} at {at} in {fill:#x}");
                }
            }
        }
    }
}
