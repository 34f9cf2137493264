//! Structured edits of YAML files: set a value at a path.
//!
//! The document is parsed, the value set in the parsed tree, and the result
//! is what the tree says — so a parameter can only ever become one scalar
//! value, never new keys, documents or anchors. To keep a GitOps file's
//! comments and layout, the new scalar is written in place of the old one on
//! its line when the path leads through block-style mappings and sequences;
//! the edited text is parsed again and used only if it equals the edited
//! tree. Otherwise the tree is written out whole (comments are then lost,
//! which the dry run's diff shows).

use serde_yaml::Value;

/// One step of a path: a mapping key or a sequence index.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Segment {
    Key(String),
    Index(usize),
}

fn segments(path: &str) -> Result<Vec<Segment>, String> {
    if path.trim().is_empty() {
        return Err("an empty path".into());
    }
    path.split('.')
        .map(|part| {
            if part.is_empty() {
                Err(format!("`{path}` has an empty part"))
            } else if let Ok(index) = part.parse::<usize>() {
                Ok(Segment::Index(index))
            } else {
                Ok(Segment::Key(part.to_string()))
            }
        })
        .collect()
}

/// Checks a path's syntax (at load time).
pub fn check_path(path: &str) -> Result<(), String> {
    segments(path).map(|_| ())
}

/// Sets `value` at `path` in `tree`. The parent must exist; the last key
/// may be new in a mapping, an index must exist.
fn set_in(tree: &mut Value, path: &[Segment], value: Value, shown: &str) -> Result<(), String> {
    let Some((last, parents)) = path.split_last() else {
        return Err("an empty path".into());
    };
    let mut node = tree;
    for (depth, segment) in parents.iter().enumerate() {
        let here = || {
            path[..=depth]
                .iter()
                .map(|s| match s {
                    Segment::Key(k) => k.clone(),
                    Segment::Index(i) => i.to_string(),
                })
                .collect::<Vec<_>>()
                .join(".")
        };
        node = match (segment, node) {
            (Segment::Key(key), Value::Mapping(map)) => map
                .get_mut(key.as_str())
                .ok_or_else(|| format!("`{shown}`: the file has no `{}`", here()))?,
            (Segment::Index(i), Value::Sequence(seq)) => {
                let len = seq.len();
                seq.get_mut(*i).ok_or_else(|| {
                    format!("`{shown}`: `{}` is out of range ({len} items)", here())
                })?
            }
            _ => {
                return Err(format!(
                    "`{shown}`: `{}` is not a mapping or list to look into",
                    here()
                ));
            }
        };
    }
    match (last, node) {
        (Segment::Key(key), Value::Mapping(map)) => {
            if let Some(old) = map.get(key.as_str())
                && matches!(old, Value::Mapping(_) | Value::Sequence(_))
            {
                return Err(format!("`{shown}` holds a mapping or list, not a value"));
            }
            map.insert(Value::String(key.clone()), value);
            Ok(())
        }
        (Segment::Index(i), Value::Sequence(seq)) => match seq.get_mut(*i) {
            Some(Value::Mapping(_) | Value::Sequence(_)) => {
                Err(format!("`{shown}` holds a mapping or list, not a value"))
            }
            Some(slot) => {
                *slot = value;
                Ok(())
            }
            None => Err(format!("`{shown}` is out of range")),
        },
        _ => Err(format!("`{shown}`: its parent is not a mapping or list")),
    }
}

/// Applies `edits` (`path`, value) to the YAML document `text`.
pub fn apply(text: &str, edits: &[(String, Value)]) -> Result<String, String> {
    let mut tree: Value =
        serde_yaml::from_str(text).map_err(|e| format!("the file is not a YAML document ({e})"))?;
    if text.lines().skip(1).any(|l| l.trim_end() == "---") {
        return Err("the file holds several YAML documents; edit a file with one".into());
    }
    let mut surgical = Some(text.to_string());
    for (path, value) in edits {
        let parsed = segments(path)?;
        set_in(&mut tree, &parsed, value.clone(), path)?;
        surgical = surgical.and_then(|t| replace_scalar(&t, &parsed, value));
    }
    if let Some(edited) = surgical
        && serde_yaml::from_str::<Value>(&edited).ok().as_ref() == Some(&tree)
    {
        return Ok(edited);
    }
    serde_yaml::to_string(&tree).map_err(|e| format!("cannot write the edited document: {e}"))
}

/// A scalar as YAML writes it on one line.
fn scalar_text(value: &Value) -> Option<String> {
    let text = serde_yaml::to_string(value).ok()?;
    let text = text.trim_end_matches('\n');
    (!text.contains('\n')).then(|| text.to_string())
}

fn indent_of(line: &str) -> usize {
    line.len() - line.trim_start_matches(' ').len()
}

fn is_content(line: &str) -> bool {
    let t = line.trim();
    !t.is_empty() && !t.starts_with('#')
}

/// The key a `key: rest` line names and where its value starts.
fn key_of(line: &str, at: usize) -> Option<(String, usize)> {
    let rest = &line[at..];
    let (key, quoted) = if let Some(inner) = rest.strip_prefix('"') {
        (inner.split('"').next()?.to_string(), true)
    } else if let Some(inner) = rest.strip_prefix('\'') {
        (inner.split('\'').next()?.to_string(), true)
    } else {
        (rest.split(':').next()?.trim_end().to_string(), false)
    };
    let key_len = if quoted {
        key.len() + 2
    } else {
        rest.find(':')?
    };
    let after = rest.get(key_len..)?;
    let after = after.strip_prefix(':')?;
    if !(after.is_empty() || after.starts_with(' ')) {
        return None;
    }
    Some((key, at + key_len + 1))
}

/// Replaces the scalar at `path` on its own line, for block-style documents;
/// `None` when the layout is not one this understands.
fn replace_scalar(text: &str, path: &[Segment], value: &Value) -> Option<String> {
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    // The range of lines under the current node, and the column its children start at.
    let (mut start, mut end) = (0usize, lines.len());
    let mut child_col: Option<usize> = None;
    let mut value_at: Option<(usize, usize)> = None;
    for (depth, segment) in path.iter().enumerate() {
        let last = depth + 1 == path.len();
        let first = (start..end).find(|&i| is_content(lines[i]))?;
        let col = child_col.unwrap_or_else(|| indent_of(lines[first]));
        let mut found = None;
        let mut item = 0usize;
        for (i, line) in lines.iter().enumerate().take(end).skip(start) {
            let line = line.trim_end_matches('\n');
            if !is_content(line) || indent_of(line) < col {
                continue;
            }
            match segment {
                Segment::Key(key) => {
                    if indent_of(line) != col {
                        continue;
                    }
                    if let Some((k, value_col)) = key_of(line, col)
                        && &k == key
                    {
                        found = Some((i, value_col, col));
                        break;
                    }
                }
                Segment::Index(n) => {
                    if indent_of(line) != col || !line[col..].starts_with("- ") {
                        continue;
                    }
                    if item == *n {
                        found = Some((i, col + 2, col));
                        break;
                    }
                    item += 1;
                }
            }
        }
        let (line_no, value_col, own_col) = found?;
        // The node's block: until a content line at or left of its own column.
        let block_end = (line_no + 1..end)
            .find(|&i| is_content(lines[i]) && indent_of(lines[i]) <= own_col)
            .unwrap_or(end);
        if last {
            value_at = Some((line_no, value_col));
            break;
        }
        let line = lines[line_no].trim_end_matches('\n');
        let rest = line[value_col..].trim();
        match segment {
            Segment::Index(_) if !rest.is_empty() => {
                // `- key: value`: the item's keys start after the dash.
                start = line_no;
                child_col = Some(value_col);
                end = block_end;
                // The first key is on this line; later ones at the same column.
                key_of(line, value_col)?;
            }
            _ => {
                if !(rest.is_empty() || rest.starts_with('#')) {
                    return None; // a flow collection or a scalar on the key's line
                }
                start = line_no + 1;
                end = block_end;
                child_col = None;
            }
        }
    }
    let (line_no, value_col) = value_at?;
    let line = lines[line_no];
    let body = line.trim_end_matches('\n');
    let rest = &body[value_col..];
    let trimmed = rest.trim_start();
    if trimmed.is_empty() || trimmed.starts_with(['|', '>', '{', '[', '&', '*', '!', '#']) {
        return None;
    }
    let lead = rest.len() - trimmed.len();
    // The old scalar ends before a ` #` comment.
    let old_len = match trimmed.find(" #") {
        Some(cut) if !trimmed.starts_with(['"', '\'']) => cut,
        _ => trimmed.len(),
    };
    let old = trimmed[..old_len].trim_end();
    if old.starts_with(['"', '\'']) && !(old.len() > 1 && old.ends_with(&old[..1])) {
        return None; // a quoted scalar with a comment-like tail, or spanning lines
    }
    let new = scalar_text(value)?;
    let mut out = String::with_capacity(text.len() + new.len());
    for (i, l) in lines.iter().enumerate() {
        if i == line_no {
            out.push_str(&body[..value_col + lead]);
            out.push_str(&new);
            out.push_str(&trimmed[old.len()..]);
            if line.ends_with('\n') {
                out.push('\n');
            }
        } else {
            out.push_str(l);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const RELEASE: &str = "\
# The payments chart, managed by Flux.
apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata:
  name: payments   # the release
spec:
  chart:
    spec:
      chart: payments
      version: 1.4.2   # bumped by Watchkeeper
  values:
    replicas: 3
    containers:
      - name: api
        image: registry.example.com/payments:1.4.2
";

    fn set(text: &str, path: &str, value: Value) -> Result<String, String> {
        apply(text, &[(path.to_string(), value)])
    }

    #[test]
    fn a_value_is_replaced_on_its_line_keeping_comments() {
        let out = set(
            RELEASE,
            "spec.chart.spec.version",
            Value::String("1.5.0".into()),
        )
        .unwrap();
        assert_eq!(
            out,
            RELEASE.replace("version: 1.4.2   #", "version: 1.5.0   #"),
            "{out}"
        );
        let out = set(RELEASE, "spec.values.replicas", Value::Number(5.into())).unwrap();
        assert!(
            out.contains("    replicas: 5\n") && out.contains("# bumped"),
            "{out}"
        );
        let out = set(
            RELEASE,
            "spec.values.containers.0.image",
            Value::String("registry.example.com/payments:1.5.0".into()),
        )
        .unwrap();
        assert!(
            out.contains("        image: registry.example.com/payments:1.5.0\n"),
            "{out}"
        );
    }

    #[test]
    fn a_hostile_value_stays_one_string() {
        for hostile in [
            "1.5.0\nkind: Secret",
            "x # comment",
            "'quoted'",
            "{ a: b }",
            "&anchor",
            "*alias",
            "true",
            "1e3",
            "- item",
            "a: b",
        ] {
            let out = set(
                RELEASE,
                "spec.chart.spec.version",
                Value::String(hostile.into()),
            )
            .unwrap();
            let tree: Value = serde_yaml::from_str(&out).unwrap();
            assert_eq!(
                tree["spec"]["chart"]["spec"]["version"],
                Value::String(hostile.into()),
                "{hostile}: {out}"
            );
            assert_eq!(tree["kind"], Value::String("HelmRelease".into()), "{out}");
        }
    }

    #[test]
    fn paths_must_lead_to_a_value() {
        assert!(
            set(RELEASE, "spec.nothing.version", Value::Null)
                .unwrap_err()
                .contains("no `spec.nothing`")
        );
        assert!(
            set(RELEASE, "spec.chart", Value::Null)
                .unwrap_err()
                .contains("mapping or list")
        );
        assert!(set(RELEASE, "spec.values.containers.3.image", Value::Null).is_err());
        assert!(set("a: [1, 2\n", "a", Value::Null).is_err(), "not YAML");
        assert!(
            set("a: 1\n---\nb: 2\n", "a", Value::Null).is_err(),
            "several documents"
        );
        // A new key in an existing mapping is fine (written out whole).
        let out = set(RELEASE, "spec.values.paused", Value::Bool(true)).unwrap();
        let tree: Value = serde_yaml::from_str(&out).unwrap();
        assert_eq!(tree["spec"]["values"]["paused"], Value::Bool(true));
    }

    #[test]
    fn flow_style_falls_back_to_writing_the_tree() {
        let out = set(
            "spec: { version: 1 }\n",
            "spec.version",
            Value::Number(2.into()),
        )
        .unwrap();
        let tree: Value = serde_yaml::from_str(&out).unwrap();
        assert_eq!(tree["spec"]["version"], Value::Number(2.into()));
    }

    proptest! {
        #[test]
        fn any_text_lands_as_exactly_that_string(text in "\\PC{0,40}") {
            let out = set(RELEASE, "spec.values.containers.0.image", Value::String(text.clone())).unwrap();
            let tree: Value = serde_yaml::from_str(&out).unwrap();
            let mut expected: Value = serde_yaml::from_str(RELEASE).unwrap();
            expected["spec"]["values"]["containers"][0]["image"] = Value::String(text);
            prop_assert_eq!(tree, expected);
        }
    }
}
