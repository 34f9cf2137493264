//! Mutation helpers for the fuzz suites (`tests/fuzz.rs`): byte flips,
//! truncation, JSON structural mutation, text and form mutation, all driven
//! by one seed so a failing case is reproduced from the seed proptest prints.
//!
//! `WK_FUZZ_CASES` scales every target (default: the short CI form).

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Map, Value, json};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// The number of cases per target: `WK_FUZZ_CASES`, else `default`.
pub fn cases(default: u32) -> u32 {
    std::env::var("WK_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Counts the executions of one target and prints them when dropped, so each
/// run reports `fuzz <target>: <n> executions in <t> s`.
pub struct Executions {
    name: &'static str,
    count: AtomicU64,
    started: Instant,
}

impl Executions {
    /// Starts counting for `name`.
    pub fn new(name: &'static str) -> Self {
        Self {
            name,
            count: AtomicU64::new(0),
            started: Instant::now(),
        }
    }

    /// One more execution.
    pub fn tick(&self) {
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    /// How many so far.
    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }
}

impl Drop for Executions {
    fn drop(&mut self) {
        eprintln!(
            "fuzz {}: {} executions in {:.1} s",
            self.name,
            self.count(),
            self.started.elapsed().as_secs_f64()
        );
    }
}

/// Tokens that tend to break parsers, spliced into bytes and strings.
pub const NASTY: &[&str] = &[
    "",
    "\0",
    "\"",
    "\\",
    "\\u0000",
    "\\ud800",
    "%",
    "%zz",
    "%00",
    "&",
    "=",
    "+",
    "<",
    ">",
    "<@",
    "<!subteam^",
    "|",
    "“",
    "”",
    "\u{202e}",
    "🙂",
    "e\u{301}",
    "\u{feff}",
    "\r\n",
    "\t",
    "-",
    "0",
    "-0",
    "1e309",
    "-1e309",
    "99999999999999999999999999999",
    "-9223372036854775808",
    "9223372036854775807",
    "18446744073709551616",
    "NaN",
    "null",
    "true",
    "{",
    "}",
    "[",
    "]",
    ":",
    ",",
    "---",
    "- ",
    "  ",
    "&a",
    "*a",
    "!!binary",
    "~",
    "? ",
    "#",
    "{{",
    "}}",
    "{{#each",
];

/// Replacement values for JSON mutation: every type, edges of each.
fn nasty_value(rng: &mut StdRng) -> Value {
    match rng.random_range(0..16) {
        0 => Value::Null,
        1 => json!(true),
        2 => json!(0),
        3 => json!(-1),
        4 => json!(i64::MIN),
        5 => json!(u64::MAX),
        6 => json!(1.0e308),
        7 => json!(""),
        8 => json!("x".repeat(rng.random_range(1..5000))),
        9 => json!(NASTY[rng.random_range(0..NASTY.len())]),
        10 => json!([]),
        11 => json!({}),
        12 => json!(["a", 1, null]),
        13 => json!({ "type": "message", "id": "U0", "ts": "1.2" }),
        14 => json!("ʕ•ᴥ•ʔ 𝕏 \u{202e}"),
        _ => json!("1712345678.000100"),
    }
}

/// A seeded mutator.
pub struct Mutator {
    rng: StdRng,
}

impl Mutator {
    /// From a seed.
    pub fn new(seed: u64) -> Self {
        Self {
            rng: StdRng::seed_from_u64(seed),
        }
    }

    /// The random source (for a target's own choices).
    pub fn rng(&mut self) -> &mut StdRng {
        &mut self.rng
    }

    /// Picks one of `items`.
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.rng.random_range(0..items.len())]
    }

    /// One to four byte-level mutations: flips, insertions, deletions,
    /// truncation, nasty tokens, duplication of a slice.
    pub fn bytes(&mut self, input: &[u8]) -> Vec<u8> {
        let mut out = input.to_vec();
        for _ in 0..self.rng.random_range(1..=4) {
            let len = out.len();
            let at = if len == 0 {
                0
            } else {
                self.rng.random_range(0..len)
            };
            match self.rng.random_range(0..7) {
                0 if len > 0 => out[at] ^= 1 << self.rng.random_range(0..8),
                1 if len > 0 => out[at] = self.rng.random(),
                2 => out.insert(at, self.rng.random()),
                3 if len > 0 => {
                    let end = (at + self.rng.random_range(1..64)).min(len);
                    out.drain(at..end);
                }
                4 => out.truncate(at),
                5 => {
                    let token = NASTY[self.rng.random_range(0..NASTY.len())].as_bytes();
                    out.splice(at..at, token.iter().copied());
                }
                _ if len > 0 => {
                    let end = (at + self.rng.random_range(1..128)).min(len);
                    let slice = out[at..end].to_vec();
                    out.splice(at..at, slice);
                }
                _ => out.push(self.rng.random()),
            }
        }
        out
    }

    /// A text mutation: bytes mutated, read back lossily as UTF-8, or a
    /// line-level change (dropped, duplicated, re-indented, swapped).
    pub fn text(&mut self, input: &str) -> String {
        if self.rng.random_bool(0.5) {
            return String::from_utf8_lossy(&self.bytes(input.as_bytes())).into_owned();
        }
        let mut lines: Vec<String> = input.lines().map(str::to_string).collect();
        for _ in 0..self.rng.random_range(1..=3) {
            if lines.is_empty() {
                lines.push(NASTY[self.rng.random_range(0..NASTY.len())].to_string());
                continue;
            }
            let at = self.rng.random_range(0..lines.len());
            match self.rng.random_range(0..7) {
                0 => {
                    lines.remove(at);
                }
                1 => {
                    let line = lines[at].clone();
                    lines.insert(at, line);
                }
                2 => lines[at] = format!("  {}", lines[at]),
                3 => lines[at] = lines[at].trim_start().to_string(),
                4 => {
                    let other = self.rng.random_range(0..lines.len());
                    lines.swap(at, other);
                }
                5 => {
                    // Replace a value after `key:` by something nasty.
                    if let Some((key, _)) = lines[at].split_once(": ") {
                        let token = NASTY[self.rng.random_range(0..NASTY.len())];
                        lines[at] = format!("{key}: {token}");
                    }
                }
                _ => {
                    let token = NASTY[self.rng.random_range(0..NASTY.len())];
                    let line = &lines[at];
                    let cut = self.rng.random_range(0..=line.len());
                    let cut = (0..=cut)
                        .rev()
                        .find(|&i| line.is_char_boundary(i))
                        .unwrap_or(0);
                    lines[at] = format!("{}{token}{}", &line[..cut], &line[cut..]);
                }
            }
        }
        lines.join("\n")
    }

    /// A structural JSON mutation: keys dropped or renamed, values replaced
    /// by other types or edge values, arrays emptied or grown, subtrees
    /// nested deep, duplicated or swapped.
    pub fn json(&mut self, input: &Value) -> Value {
        let mut out = input.clone();
        for _ in 0..self.rng.random_range(1..=4) {
            let paths = paths(&out);
            let path = paths[self.rng.random_range(0..paths.len())].clone();
            let choice = self.rng.random_range(0..8);
            let replacement = match choice {
                0 => None,
                1 | 2 => Some(nasty_value(&mut self.rng)),
                3 => {
                    let mut v = get(&out, &path).cloned().unwrap_or(Value::Null);
                    for _ in 0..self.rng.random_range(1..40) {
                        v = if self.rng.random_bool(0.5) {
                            json!([v])
                        } else {
                            json!({ "x": v })
                        };
                    }
                    Some(v)
                }
                4 => get(&out, &path).map(|v| match v {
                    Value::String(s) => json!(s.repeat(self.rng.random_range(2..200))),
                    Value::Number(n) => json!(n.to_string()),
                    Value::Array(items) => {
                        let times = self.rng.random_range(0..50);
                        Value::Array(
                            items
                                .iter()
                                .cycle()
                                .take(items.len() * times)
                                .cloned()
                                .collect(),
                        )
                    }
                    other => json!([other]),
                }),
                5 => {
                    // Another subtree of the document in this place.
                    let other = &paths[self.rng.random_range(0..paths.len())];
                    get(&out, other).cloned()
                }
                6 => get(&out, &path).map(|v| match v {
                    Value::String(s) => json!(format!(
                        "{s}{}",
                        NASTY[self.rng.random_range(0..NASTY.len())]
                    )),
                    Value::Object(map) => {
                        // Rename a key.
                        let mut renamed = Map::new();
                        for (k, v) in map {
                            renamed.insert(format!("{k}_"), v.clone());
                        }
                        Value::Object(renamed)
                    }
                    other => other.clone(),
                }),
                _ => get(&out, &path).map(|v| match v {
                    Value::String(s) => {
                        json!(s.parse::<f64>().map(|f| json!(f)).unwrap_or(json!(null)))
                    }
                    Value::Bool(b) => json!(b.to_string()),
                    Value::Null => json!("null"),
                    other => json!(other.to_string()),
                }),
            };
            set(&mut out, &path, replacement);
        }
        out
    }

    /// A JSON document as bytes: usually the structural mutation serialised,
    /// sometimes with a key written twice, or byte-mutated after.
    pub fn json_bytes(&mut self, input: &Value) -> Vec<u8> {
        let mutated = self.json(input);
        let text = mutated.to_string();
        match self.rng.random_range(0..4) {
            0 => self.bytes(text.as_bytes()),
            1 => {
                // A duplicated key: `{"type":…` written again at the front.
                match text.strip_prefix('{') {
                    Some(rest) if text.len() > 2 => {
                        format!("{{\"type\":\"event_callback\",{rest}").into_bytes()
                    }
                    _ => text.into_bytes(),
                }
            }
            _ => text.into_bytes(),
        }
    }

    /// A form body (`a=b&c=d`) mutated: pairs dropped, duplicated, values
    /// replaced (encoded or not), or bytes mutated.
    pub fn form(&mut self, input: &str) -> Vec<u8> {
        let mut pairs: Vec<String> = input.split('&').map(str::to_string).collect();
        for _ in 0..self.rng.random_range(1..=3) {
            let at = self.rng.random_range(0..pairs.len().max(1));
            match self.rng.random_range(0..6) {
                0 if !pairs.is_empty() => {
                    pairs.remove(at);
                }
                1 if !pairs.is_empty() => {
                    let pair = pairs[at].clone();
                    pairs.insert(at, pair);
                }
                2 if !pairs.is_empty() => {
                    let key = pairs[at].split('=').next().unwrap_or_default().to_string();
                    let token = NASTY[self.rng.random_range(0..NASTY.len())];
                    let value = if self.rng.random_bool(0.5) {
                        serde_urlencoded::to_string([("v", token)])
                            .unwrap_or_default()
                            .trim_start_matches("v=")
                            .to_string()
                    } else {
                        token.to_string()
                    };
                    pairs[at] = format!("{key}={value}");
                }
                3 => return self.bytes(pairs.join("&").as_bytes()),
                _ => pairs.push(format!(
                    "{}={}",
                    NASTY[self.rng.random_range(0..NASTY.len())],
                    "x".repeat(self.rng.random_range(0..3000))
                )),
            }
        }
        pairs.join("&").into_bytes()
    }

    /// Random bytes of random length (up to `max`).
    pub fn random_bytes(&mut self, max: usize) -> Vec<u8> {
        let len = self.rng.random_range(0..=max);
        (0..len).map(|_| self.rng.random()).collect()
    }
}

/// JSON nested `depth` deep (arrays), as text: beyond serde's recursion limit.
pub fn deep_json(depth: usize) -> String {
    format!("{}{}", "[".repeat(depth), "]".repeat(depth))
}

#[derive(Clone, Debug)]
enum Step {
    Key(String),
    Index(usize),
}

fn paths(value: &Value) -> Vec<Vec<Step>> {
    let mut out = vec![Vec::new()];
    fn walk(value: &Value, prefix: &mut Vec<Step>, out: &mut Vec<Vec<Step>>) {
        match value {
            Value::Object(map) => {
                for (k, v) in map {
                    prefix.push(Step::Key(k.clone()));
                    out.push(prefix.clone());
                    walk(v, prefix, out);
                    prefix.pop();
                }
            }
            Value::Array(items) => {
                for (i, v) in items.iter().enumerate().take(20) {
                    prefix.push(Step::Index(i));
                    out.push(prefix.clone());
                    walk(v, prefix, out);
                    prefix.pop();
                }
            }
            _ => {}
        }
    }
    walk(value, &mut Vec::new(), &mut out);
    out
}

fn get<'a>(value: &'a Value, path: &[Step]) -> Option<&'a Value> {
    path.iter().try_fold(value, |v, step| match step {
        Step::Key(k) => v.get(k),
        Step::Index(i) => v.get(i),
    })
}

/// Sets (or with `None`, removes) the value at `path`.
fn set(root: &mut Value, path: &[Step], replacement: Option<Value>) {
    let Some((last, parent)) = path.split_last() else {
        if let Some(v) = replacement {
            *root = v;
        }
        return;
    };
    let mut target = root;
    for step in parent {
        let next = match step {
            Step::Key(k) => target.get_mut(k),
            Step::Index(i) => target.get_mut(*i),
        };
        match next {
            Some(next) => target = next,
            None => return,
        }
    }
    match (last, target, replacement) {
        (Step::Key(k), Value::Object(map), Some(v)) => {
            map.insert(k.clone(), v);
        }
        (Step::Key(k), Value::Object(map), None) => {
            map.remove(k);
        }
        (Step::Index(i), Value::Array(items), Some(v)) if *i < items.len() => items[*i] = v,
        (Step::Index(i), Value::Array(items), None) if *i < items.len() => {
            items.remove(*i);
        }
        _ => {}
    }
}
