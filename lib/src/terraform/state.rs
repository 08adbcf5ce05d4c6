//! Terraform state files: what is in one (serial, lineage, resources), the differences
//! between two, and the serial bump that keeps everything else as it is.

use std::collections::BTreeMap;

use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

#[derive(Debug, Clone, PartialEq)]
pub struct StateInfo {
    pub serial: u64,
    pub lineage: String,
    pub terraform_version: Option<String>,
    pub resources: usize,
    pub outputs: Vec<String>,
}

/// Parses a state; `Err` says why it is not a valid one.
pub fn parse(bytes: &[u8]) -> Result<(Map<String, Value>, StateInfo), String> {
    let v: Value = serde_json::from_slice(bytes).map_err(|e| format!("not JSON: {e}"))?;
    let Value::Object(m) = v else {
        return Err("not a JSON object".into());
    };
    let version = m
        .get("version")
        .and_then(Value::as_u64)
        .ok_or("no \"version\"")?;
    if version < 3 {
        return Err(format!("state format version {version} is too old"));
    }
    let serial = m
        .get("serial")
        .and_then(Value::as_u64)
        .ok_or("no \"serial\"")?;
    let lineage = m
        .get("lineage")
        .and_then(Value::as_str)
        .ok_or("no \"lineage\"")?
        .to_string();
    let resources = m
        .get("resources")
        .and_then(Value::as_array)
        .map(Vec::len)
        .unwrap_or(0);
    let outputs = m
        .get("outputs")
        .and_then(Value::as_object)
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default();
    let info = StateInfo {
        serial,
        lineage,
        terraform_version: m
            .get("terraform_version")
            .and_then(Value::as_str)
            .map(String::from),
        resources,
        outputs,
    };
    Ok((m, info))
}

/// The state with a new serial and every other byte of each top-level field as it was:
/// re-printing parsed numbers would turn Terraform's arbitrary-precision numbers (an
/// integer past 2^64, a float with 17 digits) into nearby others. Top-level fields are
/// laid out as Terraform writes them (two-space indentation).
pub fn with_serial(bytes: &[u8], serial: u64) -> Result<Vec<u8>, String> {
    let fields: Fields = serde_json::from_slice(bytes).map_err(|e| format!("not JSON: {e}"))?;
    let serial = serial.to_string();
    let mut out = b"{\n".to_vec();
    let mut seen = false;
    for (i, (key, raw)) in fields.0.iter().enumerate() {
        let value = if key == "serial" {
            seen = true;
            serial.as_str()
        } else {
            raw.get()
        };
        field(&mut out, key, value, i + 1 < fields.0.len() || !seen);
    }
    if !seen {
        field(&mut out, "serial", &serial, false);
    }
    out.extend_from_slice(b"}\n");
    Ok(out)
}

fn field(out: &mut Vec<u8>, key: &str, value: &str, more: bool) {
    out.extend_from_slice(b"  ");
    out.extend_from_slice(Value::from(key).to_string().as_bytes());
    out.extend_from_slice(b": ");
    out.extend_from_slice(value.as_bytes());
    out.extend_from_slice(if more { b",\n" } else { b"\n" });
}

/// A JSON object's top-level fields in order, each value's text untouched.
struct Fields(Vec<(String, Box<RawValue>)>);

impl<'de> Deserialize<'de> for Fields {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> Visitor<'de> for Visit {
            type Value = Fields;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Fields, A::Error> {
                let mut v = Vec::new();
                while let Some(kv) = a.next_entry::<String, Box<RawValue>>()? {
                    v.push(kv);
                }
                Ok(Fields(v))
            }
        }
        d.deserialize_map(Visit)
    }
}

/// `type.name` (with module and index) → the instances' attributes.
fn addresses(m: &Map<String, Value>) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    for r in m
        .get("resources")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let module = r
            .get("module")
            .and_then(Value::as_str)
            .map(|s| format!("{s}."))
            .unwrap_or_default();
        let prefix = if r.get("mode").and_then(Value::as_str) == Some("data") {
            "data."
        } else {
            ""
        };
        let base = format!(
            "{module}{prefix}{}.{}",
            r.get("type").and_then(Value::as_str).unwrap_or("?"),
            r.get("name").and_then(Value::as_str).unwrap_or("?")
        );
        for i in r
            .get("instances")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let addr = match i.get("index_key") {
                Some(Value::Number(n)) => format!("{base}[{n}]"),
                Some(Value::String(s)) => format!("{base}[\"{s}\"]"),
                _ => base.clone(),
            };
            out.insert(addr, i.get("attributes").cloned().unwrap_or(Value::Null));
        }
    }
    out
}

/// Resource-level differences from `a` to `b`: (address, change) with change
/// `added`, `removed` or `changed`.
pub fn diff(a: &Map<String, Value>, b: &Map<String, Value>) -> Vec<(String, &'static str)> {
    let (x, y) = (addresses(a), addresses(b));
    let mut out = Vec::new();
    for (k, v) in &x {
        match y.get(k) {
            None => out.push((k.clone(), "removed")),
            Some(w) if w != v => out.push((k.clone(), "changed")),
            _ => {}
        }
    }
    for k in y.keys() {
        if !x.contains_key(k) {
            out.push((k.clone(), "added"));
        }
    }
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: &str = r#"{"version":4,"terraform_version":"1.15.5","serial":3,"lineage":"L","outputs":{"a":{"value":"x","type":"string"}},"resources":[{"mode":"managed","type":"terraform_data","name":"a","instances":[{"attributes":{"input":"x"}}]}],"check_results":null}"#;

    #[test]
    fn parse_and_bump() {
        let (_, i) = parse(S.as_bytes()).expect("valid");
        assert_eq!((i.serial, i.lineage.as_str(), i.resources), (3, "L", 1));
        assert_eq!(i.outputs, vec!["a"]);
        let bumped = with_serial(S.as_bytes(), 9).expect("bumped");
        let (m2, i2) = parse(&bumped).expect("valid");
        assert_eq!(i2.serial, 9);
        let keys: Vec<&String> = m2.keys().collect();
        assert_eq!(
            keys,
            [
                "version",
                "terraform_version",
                "serial",
                "lineage",
                "outputs",
                "resources",
                "check_results"
            ]
        );
        assert!(parse(b"{\"version\":4}").is_err());
        // Numbers Terraform keeps exactly and f64 does not: the bump leaves their text alone.
        let big = S.replace(
            "\"input\":\"x\"",
            "\"input\":18446744073709551617.10000000000000001",
        );
        let out = with_serial(big.as_bytes(), 4).expect("bumped");
        let text = String::from_utf8(out).expect("utf-8");
        assert!(
            text.contains("18446744073709551617.10000000000000001"),
            "{text}"
        );
        assert!(text.contains("\"serial\": 4,"), "{text}");
        assert!(parse(b"garbage").is_err());
    }

    #[test]
    fn differences() {
        let (a, _) = parse(S.as_bytes()).expect("a");
        let b_text = S
            .replace("\"input\":\"x\"", "\"input\":\"y\"")
            .replace("\"name\":\"a\"", "\"name\":\"b\"");
        let (b, _) = parse(b_text.as_bytes()).expect("b");
        assert_eq!(
            diff(&a, &b),
            vec![
                ("terraform_data.a".into(), "removed"),
                ("terraform_data.b".into(), "added")
            ]
        );
        let c_text = S.replace("\"input\":\"x\"", "\"input\":\"z\"");
        let (c, _) = parse(c_text.as_bytes()).expect("c");
        assert_eq!(diff(&a, &c), vec![("terraform_data.a".into(), "changed")]);
    }
}
