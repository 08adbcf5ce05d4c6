//! Property and mutation tests of the parsers that read untrusted input (names from a
//! storage, pvesh JSON, JSON Lines, `prune-backups`, Terraform state): whatever the input,
//! they return a value or a clean error and never panic. Stable toolchain, no coverage
//! guidance: random inputs plus byte mutations of real ones. `PROPTEST_CASES=N` overrides
//! the per-target case counts below (see docs/testing.md).

use proptest::prelude::*;
use proptest::test_runner::Config;
use pvedr::archive;
use pvedr::jsonl::RecordReader;
use pvedr::pvesh;
use pvedr::records::Record;
use pvedr::retention::KeepOptions;
use pvedr::terraform::state;
use serde_json::{Map, Value, json};

/// `cases` unless `PROPTEST_CASES` says otherwise; no regression files in the source tree
/// (found cases become named tests instead).
fn config(cases: u32) -> Config {
    let mut c = Config::default();
    if std::env::var_os("PROPTEST_CASES").is_none() {
        c.cases = cases;
    }
    c.failure_persistence = None;
    c
}

/// One byte-level edit of a seed.
#[derive(Debug, Clone)]
enum Edit {
    Flip(usize, u8),
    Set(usize, u8),
    Insert(usize, u8),
    Remove(usize),
    Truncate(usize),
    Splice(usize, Vec<u8>),
}

fn edit() -> impl Strategy<Value = Edit> {
    let interesting = prop_oneof![
        Just(b"-".to_vec()),
        Just(b"_".to_vec()),
        Just(b".".to_vec()),
        Just(b"99999999999999999999".to_vec()),
        Just(b"9223372036854775808".to_vec()),
        Just(b"-1".to_vec()),
        Just(b"1e308".to_vec()),
        Just(b"NaN".to_vec()),
        Just("\u{feff}é".as_bytes().to_vec()),
        Just(b"\0".to_vec()),
        Just(b"\n".to_vec()),
        Just(b"{".to_vec()),
        Just(b"\"".to_vec()),
        proptest::collection::vec(any::<u8>(), 1..8),
    ];
    prop_oneof![
        (any::<usize>(), 0u8..8).prop_map(|(p, b)| Edit::Flip(p, b)),
        (any::<usize>(), any::<u8>()).prop_map(|(p, b)| Edit::Set(p, b)),
        (any::<usize>(), any::<u8>()).prop_map(|(p, b)| Edit::Insert(p, b)),
        any::<usize>().prop_map(Edit::Remove),
        any::<usize>().prop_map(Edit::Truncate),
        (any::<usize>(), interesting).prop_map(|(p, s)| Edit::Splice(p, s)),
    ]
}

fn apply(seed: &[u8], edits: &[Edit]) -> Vec<u8> {
    let mut b = seed.to_vec();
    for e in edits {
        let n = b.len();
        match e {
            Edit::Flip(p, bit) if n > 0 => b[p % n] ^= 1 << bit,
            Edit::Set(p, v) if n > 0 => b[p % n] = *v,
            Edit::Insert(p, v) => b.insert(p % (n + 1), *v),
            Edit::Remove(p) if n > 0 => {
                b.remove(p % n);
            }
            Edit::Truncate(p) => b.truncate(p % (n + 1)),
            Edit::Splice(p, s) => {
                let at = p % (n + 1);
                b.splice(at..at, s.iter().copied());
            }
            _ => {}
        }
    }
    b
}

fn mutated(seeds: &'static [&'static str]) -> impl Strategy<Value = Vec<u8>> {
    (
        proptest::sample::select(seeds),
        proptest::collection::vec(edit(), 1..6),
    )
        .prop_map(|(s, e)| apply(s.as_bytes(), &e))
}

/// Any JSON value, nested, with the numbers and strings Perl prints.
fn json_value() -> impl Strategy<Value = Value> {
    let number_text = prop_oneof![
        Just("9223372036854775807".to_string()),
        Just("9223372036854775808".to_string()),
        Just("-9223372036854775809".to_string()),
        Just("18446744073709551616".to_string()),
        Just("4e+12".to_string()),
        Just("1E400".to_string()),
        Just("-0".to_string()),
        Just("1.5".to_string()),
        Just("NaN".to_string()),
        Just("inf".to_string()),
        Just("-Infinity".to_string()),
        Just(" 42 ".to_string()),
        Just("0x10".to_string()),
        Just("UPID:pve1:0000A1B2:0001C3D4:65A4A10A:vzdump::root@pam:".to_string()),
        Just("UPID:n:1:2:FFFFFFFFFFFFFFFF:t:i:u:".to_string()),
        "[-+]?[0-9]{0,25}(\\.[0-9]{0,5})?([eE][-+]?[0-9]{1,4})?",
        ".{0,12}",
    ];
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        number_text.prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 48, 8, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::from),
            proptest::collection::vec((field_name(), inner), 0..8)
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

/// Mostly the keys the parsers look up, so values land where they are read.
fn field_name() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => proptest::sample::select(&[
            "volid", "ctime", "vmid", "size", "format", "subtype", "notes", "protected",
            "verification", "state", "upid", "encrypted", "approximate-size", "storage", "type",
            "total", "used", "avail", "used_fraction", "shared", "active", "node", "name",
            "status", "template", "tags", "lock", "pool", "id", "schedule", "starttime", "dow",
            "all", "exclude", "enabled", "prune-backups", "keep-last", "keep-all", "mode",
            "next-run", "comment", "kind", "time", "version", "serial", "lineage", "resources",
            "outputs", "instances", "index_key", "attributes", "module",
        ][..]).prop_map(String::from),
        1 => ".{0,6}",
    ]
}

fn object() -> impl Strategy<Value = Map<String, Value>> {
    proptest::collection::vec((field_name(), json_value()), 0..12)
        .prop_map(|kv| kv.into_iter().collect())
}

// ---- 1. archive names -------------------------------------------------------------------

const NAMES: &[&str] = &[
    "vzdump-qemu-100-2024_01_15-02_00_02.vma.zst",
    "vzdump-lxc-101-2024_01_15-02_01_07.tar",
    "vzdump-openvz-16110-2020_03_30-21_39_30.tgz",
    "vzdump-qemu-999999999-2024_02_29-23_59_59.vma.lzo",
    "vzdump-lxc-102-2023_12_31-00_00_00.tar.gz",
    "vzdump-qemu-100-manual-copy.vma.bz2",
    "vzdump-qemu-100-2024_01_15-02_00_02.log",
    "vzdump-qemu-100-2024_01_15-02_00_02.vma.dat",
];

/// The standard-name invariants: the stem is rebuilt from the parsed parts.
fn check_name(file: &str) {
    let Some(a) = archive::parse(file) else {
        return;
    };
    assert!(
        ["qemu", "lxc", "openvz", "unknown"].contains(&a.subtype.as_str()),
        "{file:?}: subtype {}",
        a.subtype
    );
    assert_eq!(format!("{}.{}", a.stem, a.format), file);
    if let Some(t) = a.local_time.filter(|_| a.is_std_name()) {
        let vmid = a.vmid.expect("a standard name has a vmid");
        let rebuilt = format!(
            "vzdump-{}-{vmid}-{}",
            a.subtype,
            t.format("%Y_%m_%d-%H_%M_%S")
        );
        assert_eq!(rebuilt, a.stem, "{file:?}");
    }
}

fn check_log_name(file: &str) {
    if let Some((subtype, vmid, t)) = archive::parse_log_name(file) {
        let rebuilt = format!(
            "vzdump-{subtype}-{vmid}-{}.log",
            t.format("%Y_%m_%d-%H_%M_%S")
        );
        assert_eq!(rebuilt, file);
    }
}

proptest! {
    #![proptest_config(config(3000))]

    #[test]
    fn fuzz_archive_names_arbitrary(s in ".{0,80}") {
        check_name(&s);
        check_log_name(&s);
        let _ = archive::is_in_progress(&s);
    }

    #[test]
    fn fuzz_archive_names_mutated(b in mutated(NAMES)) {
        let s = String::from_utf8_lossy(&b);
        check_name(&s);
        check_log_name(&s);
        // The same mutation behind each extension: the stem part is what varies.
        for ext in ["vma", "tar.zst", "tgz", "log"] {
            check_name(&format!("{s}.{ext}"));
            check_log_name(&format!("{s}.{ext}"));
        }
    }

    #[test]
    fn fuzz_archive_names_shaped(
        t in "(qemu|lxc|openvz|none)",
        id in "[0-9]{1,11}",
        date in "[0-9]{4}_[0-9]{2}_[0-9]{2}-[0-9]{2}_[0-9]{2}_[0-9]{2}",
        ext in "(vma|vma\\.zst|tar|tar\\.gz|tgz|log)",
    ) {
        check_name(&format!("vzdump-{t}-{id}-{date}.{ext}"));
        check_log_name(&format!("vzdump-{t}-{id}-{date}.{ext}"));
    }
}

// ---- 2. pvesh records ---------------------------------------------------------------------

/// Renders `n` (an integer) the ways Perl and humans write one, and `n + frac` for a
/// nonzero fraction digit string.
fn integer_text() -> impl Strategy<Value = (String, Option<i128>)> {
    let n = prop_oneof![
        any::<i64>().prop_map(i128::from),
        (-(1i128 << 70))..(1i128 << 70),
        -100_000i128..100_000,
    ];
    (n, 0u8..6, 0u32..4, "[1-9]{0,3}", any::<bool>()).prop_map(|(n, style, zeros, frac, pad)| {
        let sign = if n < 0 { "-" } else { "" };
        let digits = n.unsigned_abs().to_string();
        let (text, exact) = match style {
            0 => (n.to_string(), Some(n)),
            1 => (format!("{n}.{}", "0".repeat(zeros as usize)), Some(n)),
            2 if !frac.is_empty() => (format!("{n}.{frac}"), None),
            // Scientific: d.ddd e+k, exactly n.
            3 => {
                let (head, tail) = digits.split_at(1);
                (format!("{sign}{head}.{tail}e+{}", tail.len()), Some(n))
            }
            // n * 10^zeros written as n e zeros.
            4 => {
                let big = n.checked_mul(10i128.pow(zeros));
                (format!("{n}e{zeros}"), big)
            }
            // n / 10^zeros written with a negative exponent: an integer only if it divides.
            _ => {
                let p = 10i128.pow(zeros);
                let exact = (n % p == 0).then_some(n / p);
                (format!("{n}E-{zeros}"), exact)
            }
        };
        (if pad { format!(" {text}\t") } else { text }, exact)
    })
}

proptest! {
    #![proptest_config(config(2000))]

    #[test]
    fn fuzz_pvesh_records(m in object()) {
        let _ = pvesh::backup("pve1", "local", &m);
        let _ = pvesh::job(&m);
        let _ = pvesh::storage("pve1", &m);
        let _ = pvedr::pve::Resource::from_json(&m);
        let _ = pvesh::bool_of(&m, "protected");
        let _ = pvesh::uint_of(&m, "vmid");
        for k in m.keys() {
            let _ = pvesh::int_of(&m, k);
            let _ = pvesh::bool_of(&m, k);
            if let Some(Value::String(s)) = m.get(k) {
                let _ = pvesh::upid_start(s);
            }
        }
        // What the library reads on must be a record it can write and read back.
        if let Some(b) = pvesh::backup("pve1", "local", &m) {
            let v = Record::from(b).to_value();
            prop_assert!(Record::from_value(v).is_ok());
        }
    }

    #[test]
    fn fuzz_int_of_is_exact((text, exact) in integer_text()) {
        let m: Map<String, Value> = [("n".to_string(), Value::from(text.clone()))].into_iter().collect();
        let want = exact.and_then(|n| i64::try_from(n).ok());
        prop_assert_eq!(pvesh::int_of(&m, "n"), want, "{:?}", text);
    }

    #[test]
    fn fuzz_int_of_numbers(v in json_value()) {
        let m: Map<String, Value> = [("n".to_string(), v.clone())].into_iter().collect();
        if let (Some(got), Value::Number(n)) = (pvesh::int_of(&m, "n"), &v) {
            // A JSON number denotes what serde_json holds: an i64, a u64 or an f64.
            if let Some(i) = n.as_i64() {
                prop_assert_eq!(got, i);
            } else {
                let f = n.as_f64().expect("a number");
                prop_assert!(n.as_u64().is_none() || got as u64 == n.as_u64().unwrap_or(0));
                prop_assert_eq!(got as f64, f);
                prop_assert!(f.fract() == 0.0 && f.abs() < 2f64.powi(63));
            }
        }
    }

    #[test]
    fn fuzz_upid_start(s in "UPID:[a-z0-9]{0,5}:[0-9A-F]{0,9}:[0-9A-F]{0,9}:[-+0-9A-Fa-f]{0,20}:[a-z]{0,6}:[0-9]{0,4}:[a-z@]{0,8}:") {
        if let Some(t) = pvesh::upid_start(&s) {
            let field = s.split(':').nth(4).unwrap_or("");
            prop_assert_eq!(i64::from_str_radix(field, 16).ok(), Some(t));
        }
    }
}

/// Found by `fuzz_int_of_is_exact`: strings went through `f64`, which rounds.
#[test]
fn int_of_does_not_round_strings() {
    let m = |s: &str| -> Map<String, Value> { [("n".to_string(), json!(s))].into_iter().collect() };
    assert_eq!(
        pvesh::int_of(&m("9007199254740993.0"), "n"),
        Some(9007199254740993)
    );
    assert_eq!(
        pvesh::int_of(&m("9007199254740993e0"), "n"),
        Some(9007199254740993)
    );
    assert_eq!(pvesh::int_of(&m("1.0000000000000000001"), "n"), None);
    assert_eq!(
        pvesh::int_of(&m("9223372036854775807.0"), "n"),
        Some(i64::MAX)
    );
    assert_eq!(
        pvesh::int_of(&m("-9223372036854775808.00"), "n"),
        Some(i64::MIN)
    );
    assert_eq!(pvesh::int_of(&m("9223372036854775808.0"), "n"), None);
    assert_eq!(pvesh::int_of(&m("4e+12"), "n"), Some(4_000_000_000_000));
    assert_eq!(pvesh::int_of(&m("1e999999999999999999999"), "n"), None);
    assert_eq!(pvesh::int_of(&m("0e999999999999999999999"), "n"), Some(0));
    assert_eq!(pvesh::int_of(&m("120e-1"), "n"), Some(12));
    assert_eq!(pvesh::int_of(&m("NaN"), "n"), None);
}

// ---- 3. JSON Lines ------------------------------------------------------------------------

const JSONL: &[&str] = &[
    "{\"kind\":\"backup\",\"storage\":\"local\",\"volid\":\"local:backup/vzdump-qemu-100-2024_01_15-02_00_02.vma.zst\",\"ctime\":1705284002,\"format\":\"vma.zst\",\"size\":123,\"protected\":1,\"notes\":\"x\"}\n",
    "{\"kind\":\"guest\",\"vmid\":100,\"type\":\"qemu\",\"node\":\"pve1\",\"tags\":[\"a\"]}\n\n{\"kind\":\"storage\",\"storage\":\"local\",\"type\":\"dir\",\"active\":true,\"shared\":false}\n",
    "{\"kind\":\"job\",\"id\":\"backup-1\",\"vmid\":[100],\"enabled\":true,\"prune_backups\":{\"keep-last\":3}}\n",
    "{\"kind\":\"backup\",\"kind\":\"other\",\"volid\":1}\n{\"kind\":\"step\",\"action\":\"x\"}\n",
];

/// Reads everything; every error is an input error naming the line.
fn read_all_lines(bytes: &[u8]) {
    for r in RecordReader::new(bytes, "fuzz.jsonl") {
        if let Err(e) = r {
            let msg = e.to_string();
            assert!(msg.starts_with("fuzz.jsonl:"), "{msg}");
        }
    }
}

proptest! {
    #![proptest_config(config(2000))]

    #[test]
    fn fuzz_jsonl_bytes(b in proptest::collection::vec(any::<u8>(), 0..400)) {
        read_all_lines(&b);
    }

    #[test]
    fn fuzz_jsonl_mutated(b in mutated(JSONL)) {
        read_all_lines(&b);
    }

    #[test]
    fn fuzz_jsonl_line_bound(b in mutated(JSONL), max in 0usize..300) {
        // Every line is read or refused as a whole: as many results as non-blank lines.
        let lines = b.split(|c| *c == b'\n').filter(|l| !l.iter().all(u8::is_ascii_whitespace)).count();
        let mut got = 0;
        for r in RecordReader::new(&b[..], "fuzz.jsonl").with_max_line(max) {
            got += 1;
            if let Err(e) = r {
                prop_assert!(e.to_string().starts_with("fuzz.jsonl:"));
            }
        }
        prop_assert!(got <= lines);
    }

    #[test]
    fn fuzz_jsonl_deep_nesting(depth in 1usize..5000, open in "[\\[{]") {
        // serde_json's recursion limit (128) makes this a clean error, not a stack overflow.
        let (o, c) = if open == "[" { ("[", "]") } else { ("{\"a\":", "}") };
        let line = format!("{{\"kind\":\"x\",\"v\":{}1{}}}\n", o.repeat(depth), c.repeat(depth));
        read_all_lines(line.as_bytes());
    }
}

#[test]
fn fuzz_jsonl_very_long_line() {
    let notes = "n".repeat(8 << 20);
    let line = format!("{{\"kind\":\"x\",\"notes\":\"{notes}\"}}\n{{\"kind\":");
    let got: Vec<_> = RecordReader::new(line.as_bytes(), "long").collect();
    assert_eq!(got.len(), 2);
    assert!(got[0].is_ok());
    assert!(
        got[1]
            .as_ref()
            .is_err_and(|e| e.to_string().starts_with("long:2:"))
    );
    // Not UTF-8 mid-stream: an error for that line, then the reading goes on.
    let mut r = RecordReader::new(&b"{\"kind\":\"\xff\"}\n{\"kind\":\"x\"}\n"[..], "b");
    assert!(r.next().is_some_and(|x| x.is_err()));
    let _ = r.next();
}

/// Before the bound, a line of any length was read whole into memory.
#[test]
fn jsonl_long_line_is_refused_and_skipped() {
    let long = format!("{{\"kind\":\"x\",\"n\":\"{}é\"}}", "a".repeat(40));
    let input = format!("{{\"kind\":\"x\"}}\n{long}\n{{\"kind\":\"y\"}}\n");
    let got: Vec<_> = RecordReader::new(input.as_bytes(), "in")
        .with_max_line(30)
        .collect();
    assert_eq!(got.len(), 3);
    assert!(got[0].is_ok());
    let e = got[1].as_ref().map(|_| ()).unwrap_err().to_string();
    assert_eq!(e, "in:2: line longer than 30 bytes");
    assert!(got[2].as_ref().is_ok_and(|r| r.kind() == "y"));
    // Exactly at the bound is fine, with or without the newline.
    let exact = "{\"kind\":\"x\"}";
    for text in [format!("{exact}\n"), exact.to_string()] {
        let mut r = RecordReader::new(text.as_bytes(), "in").with_max_line(exact.len());
        assert!(r.next().is_some_and(|x| x.is_ok()), "{text:?}");
        assert!(r.next().is_none());
    }
    assert_eq!(pvedr::jsonl::MAX_LINE, 64 << 20);
}

// ---- 4. prune-backups ---------------------------------------------------------------------

const POLICIES: &[&str] = &[
    "keep-last=3,keep-daily=7,keep-weekly=4,keep-monthly=12,keep-yearly=2",
    "keep-all=1",
    "keep-hourly=24,keep-all=no",
    " ,keep-last=+0003\n,",
    "keep-daily=99999999999999999999999",
];

/// What a parsed policy means: all-zero counts keep everything, as keep-all does.
fn normal(o: KeepOptions) -> KeepOptions {
    if o.keeps_everything() {
        KeepOptions {
            all: true,
            ..Default::default()
        }
    } else {
        o
    }
}

fn check_policy(s: &str) {
    if let Ok(o) = s.parse::<KeepOptions>() {
        let again: KeepOptions = o
            .to_string()
            .parse()
            .unwrap_or_else(|e| panic!("{s:?} → {o} does not parse: {e}"));
        assert_eq!(normal(again), normal(o), "{s:?}");
    }
}

proptest! {
    #![proptest_config(config(3000))]

    #[test]
    fn fuzz_prune_backups_arbitrary(s in ".{0,60}") {
        check_policy(&s);
    }

    #[test]
    fn fuzz_prune_backups_mutated(b in mutated(POLICIES)) {
        check_policy(&String::from_utf8_lossy(&b));
    }

    #[test]
    fn fuzz_prune_backups_round_trip(counts in proptest::array::uniform6(prop_oneof![Just(0u64), 1u64..100, Just(u32::MAX as u64)]), shuffle in any::<u64>()) {
        let keys = pvedr::retention::policy::KEYS;
        let mut parts: Vec<String> = keys.iter().zip(counts).filter(|(_, n)| *n > 0).map(|(k, n)| format!("{k}={n}")).collect();
        if !parts.is_empty() {
            let r = (shuffle as usize) % parts.len();
            parts.rotate_left(r);
        }
        let s = parts.join(",");
        let o: KeepOptions = if s.is_empty() { "keep-all=1".parse() } else { s.parse() }.expect("valid");
        prop_assert_eq!(o.counts(), counts);
        check_policy(&s);
    }
}

proptest! {
    #![proptest_config(config(800))]

    #[test]
    fn fuzz_prune_backups_json(m in object()) {
        let _ = KeepOptions::from_json(&m);
    }

    #[test]
    fn fuzz_jsonl_values(kind in "(backup|guest|storage|job|restore|tfstate_version|step|check|summary|snapshot|backup_failure|x)", m in object()) {
        let mut m = m;
        m.insert("kind".into(), Value::from(kind));
        let line = format!("{}\n", Value::Object(m));
        read_all_lines(line.as_bytes());
    }
}

// The fast path for `backup` lines (`pvedr::backup_line`) reads what the general one reads.

const BACKUP_LINES: &[&str] = &[
    r#"{"kind":"backup","node":"pve1","storage":"local","volid":"local:backup/vzdump-qemu-100-2024_01_15-02_00_02.vma.zst","vmid":100,"subtype":"qemu","ctime":1705284002,"time":"2024-01-15T02:00:02Z","size":1000000,"format":"vma.zst","protected":false}"#,
    r#"{"kind":"backup","volid":"pbs:backup/ct/101/2024-01-15T02:00:02Z","ctime":"1705284002","size":"12","protected":"1","verification":{"state":"ok","upid":"UPID:x"},"content":"backup","mark":"keep","reason":"keep-last 1"}"#,
    r#"{"kind":"backup","volid":"local:backup/vzdump-lxc-101-manual.tar.zst","ctime":1,"notes":"a\nb","vmid":null,"kind":"backup","x":[1,{"y":2.5}],"volid":"local:backup/vzdump-lxc-102-2024_01_15-02_00_02.tar"}"#,
];

fn general_way(text: &str) -> Result<Record, String> {
    let v: Value = serde_json::from_str(text).map_err(|e| format!("not a JSON object: {e}"))?;
    Record::from_value(v)
}

fn same_as_general_way(line: &[u8]) {
    let Ok(text) = std::str::from_utf8(line) else {
        return;
    };
    let text = text.trim();
    if text.is_empty() || text.contains('\n') {
        return;
    }
    let fast = RecordReader::new(text.as_bytes(), "f")
        .next()
        .expect("one line");
    match (fast, general_way(text)) {
        (Ok(a), Ok(b)) => {
            assert_eq!(a, b, "{text}");
            assert_eq!(a.to_json_line().ok(), b.to_json_line().ok(), "{text}");
        }
        (Err(a), Err(b)) => assert_eq!(a.to_string(), format!("f:1: {b}"), "{text}"),
        (a, b) => panic!("{text}: fast {a:?}, general {b:?}"),
    }
}

proptest! {
    #![proptest_config(config(2000))]

    #[test]
    fn fuzz_backup_line_mutated(b in mutated(BACKUP_LINES)) {
        same_as_general_way(&b);
    }

    #[test]
    fn fuzz_backup_line_values(m in object(), known in proptest::collection::vec((proptest::sample::select(&["volid", "ctime", "storage", "time", "vmid", "subtype", "format", "size", "protected", "verification", "node", "notes", "kind"][..]), json_value()), 0..6)) {
        let mut line = String::from(r#"{"kind":"backup","volid":"local:backup/vzdump-qemu-100-2024_01_15-02_00_02.vma","ctime":5"#);
        for (k, v) in m.iter().map(|(k, v)| (k.as_str(), v)).chain(known.iter().map(|(k, v)| (*k, v))) {
            line.push_str(&format!(",{}:{}", Value::from(k), v));
        }
        line.push('}');
        same_as_general_way(line.as_bytes());
    }
}

// ---- 6. Terraform state -------------------------------------------------------------------

const STATE: &str = r#"{
  "version": 4,
  "terraform_version": "1.9.8",
  "serial": 7,
  "lineage": "3f1c0e6a-1d2b-4c3d-8e9f-0a1b2c3d4e5f",
  "outputs": {"ip": {"value": "10.0.0.5", "type": "string"}},
  "resources": [
    {"mode": "managed", "type": "proxmox_vm_qemu", "name": "web", "provider": "provider[\"registry.terraform.io/telmate/proxmox\"]",
     "instances": [{"index_key": 0, "schema_version": 0, "attributes": {"vmid": 100, "name": "web0"}},
                   {"index_key": "b", "attributes": {"vmid": 101}}]},
    {"module": "module.db", "mode": "data", "type": "proxmox_nodes", "name": "all", "instances": [{"attributes": {}}]}
  ],
  "check_results": null
}
"#;

fn check_state(bytes: &[u8]) {
    if let Ok((m, info)) = state::parse(bytes) {
        let bumped =
            state::with_serial(bytes, info.serial.saturating_add(1)).expect("a parsed state bumps");
        let (m2, info2) = state::parse(&bumped).expect("a bumped state parses");
        assert_eq!(info2.serial, info.serial.saturating_add(1));
        assert_eq!(info2.lineage, info.lineage);
        assert!(state::diff(&m, &m2).is_empty());
    }
}

proptest! {
    #![proptest_config(config(700))]

    #[test]
    fn fuzz_tfstate_mutated(b in (Just(STATE), proptest::collection::vec(edit(), 1..8)).prop_map(|(s, e)| apply(s.as_bytes(), &e))) {
        check_state(&b);
    }

    #[test]
    fn fuzz_tfstate_values(m in object(), resources in proptest::collection::vec(json_value(), 0..4)) {
        let mut m = m;
        m.insert("version".into(), json!(4));
        m.insert("serial".into(), json!(1));
        m.insert("lineage".into(), json!("l"));
        m.insert("resources".into(), Value::from(resources));
        let bytes = serde_json::to_vec(&Value::Object(m.clone())).expect("json");
        check_state(&bytes);
        let (a, _) = state::parse(STATE.as_bytes()).expect("seed");
        let _ = state::diff(&a, &m);
        let _ = state::diff(&m, &a);
    }

    #[test]
    fn fuzz_tfstate_bytes(b in proptest::collection::vec(any::<u8>(), 0..200)) {
        check_state(&b);
    }
}

#[test]
fn fuzz_seeds_are_valid() {
    // The mutation tests start from inputs the parsers accept, so they reach past the
    // first check.
    for n in &NAMES[..6] {
        assert!(archive::parse(n).is_some(), "{n}");
    }
    assert!(archive::parse_log_name(NAMES[6]).is_some());
    for p in POLICIES {
        assert!(p.parse::<KeepOptions>().is_ok(), "{p}");
    }
    assert!(state::parse(STATE.as_bytes()).is_ok());
    for l in &JSONL[..3] {
        for r in RecordReader::new(l.as_bytes(), "seed") {
            assert!(r.is_ok(), "{l}");
        }
    }
}
