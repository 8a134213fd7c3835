use super::*;

const SPEC: &str = "openapi: 3.0.3\npaths:\n  /a:\n    get: {}\n";

fn yaml(text: &str) -> Result<Doc, String> {
    read(text, Format::Yaml)
}

#[test]
fn the_format_is_the_extension_or_else_the_first_byte() {
    use std::path::Path;
    fn p(s: &str) -> Option<&Path> {
        Some(Path::new(s))
    }
    assert_eq!(Format::of(p("a.json"), "openapi: 3.0.0"), Format::Json);
    assert_eq!(Format::of(p("a.YML"), "{}"), Format::Yaml);
    assert_eq!(Format::of(p("a.yaml"), "{}"), Format::Yaml);
    assert_eq!(Format::of(p("spec"), " \n {\"openapi\": 1}"), Format::Json);
    assert_eq!(Format::of(None, "openapi: 3.1.0"), Format::Yaml);
    // One parser: JSON read as JSON fails as JSON, it is not tried as YAML too.
    let e = read("{\"openapi\": \"3.0.0\", paths: {}}", Format::Json).unwrap_err();
    assert!(e.starts_with("JSON: "), "{e}");
}

#[test]
fn only_what_routes_need_is_kept() {
    let d = yaml(
        "swagger: '2.0'\nopenapi: 3.1\nservers: [{url: 'http://x/api', description: d}, {url: /other}]\n\
         basePath: /v1\ninfo: {title: t}\npaths:\n  /a:\n    get: {}\n    Post: {}\n    parameters: []\n  /b: {}\n",
    )
    .unwrap();
    assert_eq!(d.version.as_deref(), Some("3.1"));
    assert_eq!(d.server_url.as_deref(), Some("http://x/api"));
    assert_eq!(d.base_path.as_deref(), Some("/v1"));
    assert_eq!(
        d.paths.unwrap(),
        [("/a".to_string(), vec!["GET"]), ("/b".to_string(), vec![])]
    );
    assert!(
        yaml("openapi: 3.0.0\npaths: [1, 2]\n")
            .unwrap()
            .paths
            .is_none()
    );
    assert!(yaml(SPEC).unwrap().paths.is_some());
    // A byte-order mark is not content.
    assert!(read(&format!("\u{feff}{SPEC}"), Format::Yaml).is_ok());
}

#[test]
fn deep_nesting_is_refused_before_parsing_whatever_the_format() {
    let bomb = "[".repeat(100_000);
    for format in [Format::Json, Format::Yaml] {
        let t = std::time::Instant::now();
        let e = read(&bomb, format).unwrap_err();
        assert!(e.contains("nested deeper than 64 levels (line 1)"), "{e}");
        // Measured, not asserted: refused in microseconds (it took 32 s parsed twice).
        eprintln!("{format:?}: 100k brackets refused in {:?}", t.elapsed());
    }
    let deep_map = format!("{}1{}", "{a: ".repeat(65), "}".repeat(65));
    assert!(yaml(&deep_map).unwrap_err().contains("nested deeper"));
    // Block nesting: by indentation, and by compact sequences on one line.
    let mut indented = String::new();
    for i in 0..200 {
        indented.push_str(&format!("{}k{i}:\n", " ".repeat(i)));
    }
    assert!(yaml(&indented).unwrap_err().contains("nested deeper"));
    let compact = "- ".repeat(100_000);
    assert!(yaml(&compact).unwrap_err().contains("nested deeper"));
    // At the bound, it is the parser's business (and no OpenAPI document).
    let ok = format!("{}{}", "[".repeat(64), "]".repeat(64));
    assert!(read(&ok, Format::Json).is_ok());
    assert!(read(&ok, Format::Yaml).is_ok());
}

#[test]
fn brackets_that_open_nothing_are_not_counted() {
    let opens = "[".repeat(200);
    let texts = [
        format!("{SPEC}info: {{description: \"{opens}\"}}\n"),
        format!("{SPEC}info: {{description: '{opens} it''s'}}\n"),
        format!("{SPEC}x: plain text {opens}\n"),
        format!("{SPEC}# {opens}\n"),
        format!("{SPEC}x: |\n  {opens}\n  more {opens}\n\ny: 1\n"),
        format!("{SPEC}- k: >-\n    {opens}\n"),
        format!("{SPEC}x: \"multi\n  line {opens}\"\n"),
    ];
    for t in &texts {
        if let Err(e) = yaml(t) {
            assert!(!e.contains("nested"), "{t}: {e}");
        }
    }
    let json = format!("{{\"openapi\":\"3.0.0\",\"paths\":{{}},\"x\":\"{opens}\\\"{opens}\"}}");
    assert!(read(&json, Format::Json).is_ok());
}

#[test]
fn brackets_hidden_where_a_parser_would_open_them_are_counted() {
    // Each of these opens 100 k flow collections in a YAML parser.
    let opens = "[".repeat(100_000);
    let texts = [
        // A quote inside a plain scalar quotes nothing.
        format!("a: b 'c\nd: {opens}"),
        format!("a: b:'c\nd: {opens}"),
        format!("a: [x 'y, {opens}"),
        format!("a: [x:'y, {opens}"),
        // After a block scalar, a line no more indented than its key is structure.
        format!("- key: |\n    text\n  other: {opens}"),
        // A node may follow a document marker, an anchor or a tag.
        format!("--- {opens}"),
        format!("a: &x{opens}"),
        format!("a: !t{opens}"),
        format!("a: [&x{opens}"),
    ];
    for t in &texts {
        let e = yaml(t).unwrap_err();
        assert!(e.contains("nested deeper"), "{}: {e}", &t[..12]);
    }
}

#[test]
fn an_alias_bomb_is_refused_having_built_nothing() {
    // Nine levels of nine aliases: 9^9 (387 M) nodes from 1 KB of text; placed where
    // routes are read and where they are not.
    let mut bomb = String::from("a: &a [x, x, x, x, x, x, x, x, x]\n");
    for (prev, name) in "abcdefgh".chars().zip("bcdefghi".chars()) {
        let refs = vec![format!("*{prev}"); 9].join(", ");
        bomb.push_str(&format!("{name}: &{name} [{refs}]\n"));
    }
    for tail in [
        "openapi: 3.0.0\npaths: {}\nx: *i\n",
        "openapi: 3.0.0\npaths:\n  /a: *i\n",
        "openapi: 3.0.0\nservers: *i\npaths: {}\n",
        "openapi: 3.0.0\npaths: {/a: {get: *i}}\n",
    ] {
        let text = format!("anchors:\n{}{tail}", indent(&bomb));
        let t = std::time::Instant::now();
        let e = yaml(&text).unwrap_err();
        assert!(e.contains("aliases"), "{e}");
        eprintln!("alias bomb refused in {:?}", t.elapsed());
    }
    // Aliases a hand-written spec uses are fine.
    let shared = "openapi: 3.0.0\nx: &ok {description: ok}\npaths:\n  /a: {get: {responses: {'200': *ok}}}\n  /b: {get: {responses: {'200': *ok}}}\n";
    assert_eq!(yaml(shared).unwrap().paths.unwrap().len(), 2);
}

#[test]
fn a_yaml_spec_with_more_nodes_than_its_parser_should_hold_is_refused_before_parsing() {
    let many = format!(
        "openapi: 3.0.0\npaths: {{}}\nx:\n{}",
        "- 1\n".repeat(1 << 20)
    );
    let e = yaml(&many).unwrap_err();
    assert!(e.contains("more than 1048576 nodes"), "{e}");
    // JSON is read streaming: the same count is fine.
    let json = format!(
        "{{\"openapi\":\"3.0.0\",\"paths\":{{}},\"x\":[{}1]}}",
        "1,".repeat(1 << 20)
    );
    assert!(read(&json, Format::Json).is_ok());
}

fn indent(s: &str) -> String {
    s.lines().map(|l| format!("  {l}\n")).collect()
}
