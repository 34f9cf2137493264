//! Parameters: their checked definitions and the typed values a request
//! gives them. A value is parsed against its type before anything renders:
//! what a template sees is a number, a boolean, a duration, an enum value, a
//! catalog component id, or one line of text that matched its pattern.

use super::model::{ParamType, Parameter, Scalar};
use crate::config::HumanDuration;
use regex::Regex;
use serde_json::Value;
use std::collections::BTreeMap;

/// Longest text a string parameter takes.
pub const MAX_TEXT: usize = 500;

/// A parameter as checked at load: its spec, compiled pattern and bounds.
#[derive(Clone, Debug)]
pub struct ParamDef {
    /// As written.
    pub spec: Parameter,
    pattern: Option<Regex>,
    min: Option<i64>,
    max: Option<i64>,
}

/// A parameter's value, typed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ParamValue {
    /// Text (strings, enum values, component ids).
    Text(String),
    /// A whole number.
    Integer(i64),
    /// A boolean.
    Bool(bool),
    /// A duration, as written.
    Duration(String),
}

impl ParamValue {
    /// As templates see it.
    pub fn to_json(&self) -> Value {
        match self {
            ParamValue::Text(t) | ParamValue::Duration(t) => Value::String(t.clone()),
            ParamValue::Integer(n) => Value::from(*n),
            ParamValue::Bool(b) => Value::Bool(*b),
        }
    }

    /// As YAML writes it (structured edits by `param`).
    pub fn to_yaml(&self) -> serde_yaml::Value {
        match self {
            ParamValue::Text(t) | ParamValue::Duration(t) => serde_yaml::Value::String(t.clone()),
            ParamValue::Integer(n) => serde_yaml::Value::Number((*n).into()),
            ParamValue::Bool(b) => serde_yaml::Value::Bool(*b),
        }
    }

    /// As a person reads it (and as stored).
    pub fn text(&self) -> String {
        match self {
            ParamValue::Text(t) | ParamValue::Duration(t) => t.clone(),
            ParamValue::Integer(n) => n.to_string(),
            ParamValue::Bool(b) => b.to_string(),
        }
    }
}

/// The values of one request, by parameter name, in the playbook's order.
pub type Params = BTreeMap<String, ParamValue>;

/// The params as the templates' `params` object.
pub fn params_json(params: &Params) -> Value {
    Value::Object(
        params
            .iter()
            .map(|(k, v)| (k.clone(), v.to_json()))
            .collect(),
    )
}

/// Decides whether a component id may be used, and its canonical id.
pub type ComponentCheck<'a> = dyn Fn(&str) -> Result<String, String> + 'a;

fn bound(kind: ParamType, value: &Scalar, which: &str) -> Result<i64, String> {
    match (kind, value) {
        (ParamType::Integer | ParamType::String, Scalar::Integer(n)) => Ok(*n),
        (ParamType::Duration, Scalar::Text(text)) => text
            .parse::<HumanDuration>()
            .map(|d| d.as_chrono().num_seconds())
            .map_err(|e| format!("{which}: {e}")),
        (ParamType::Integer | ParamType::String, _) => {
            Err(format!("{which} must be a whole number"))
        }
        (ParamType::Duration, _) => Err(format!("{which} must be a duration such as 5m")),
        (_, _) => Err(format!(
            "{which} applies only to string, integer and duration parameters"
        )),
    }
}

/// A name of lower-case letters, digits and `joiner`, starting with a
/// letter, at most `max` long (playbook and parameter names).
pub fn is_identifier(text: &str, max: usize, joiner: char) -> bool {
    !text.is_empty()
        && text.len() <= max
        && text.starts_with(|c: char| c.is_ascii_lowercase())
        && text
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == joiner)
}

impl ParamDef {
    /// Checks a parameter's definition.
    pub fn new(spec: &Parameter) -> Result<Self, String> {
        if !is_identifier(&spec.name, 40, '_') {
            return Err(format!(
                "parameter name `{}` must be lower-case letters, digits and `_`, starting with a letter",
                spec.name
            ));
        }
        let pattern = match &spec.pattern {
            Some(_) if spec.kind != ParamType::String => {
                return Err("pattern applies only to string parameters".into());
            }
            Some(text) => Some(Regex::new(&format!("^(?:{text})$")).map_err(|e| {
                format!("pattern is not a regular expression: {}", regex_reason(&e))
            })?),
            None => None,
        };
        let min = spec
            .min
            .as_ref()
            .map(|v| bound(spec.kind, v, "min"))
            .transpose()?;
        let max = spec
            .max
            .as_ref()
            .map(|v| bound(spec.kind, v, "max"))
            .transpose()?;
        if let (Some(min), Some(max)) = (min, max)
            && min > max
        {
            return Err("min is larger than max".into());
        }
        match spec.kind {
            ParamType::Enum if spec.values.is_empty() => {
                return Err("an enum parameter needs values: [a, b]".into());
            }
            ParamType::Enum => {}
            _ if !spec.values.is_empty() => {
                return Err("values applies only to enum parameters".into());
            }
            _ => {}
        }
        let def = Self {
            spec: spec.clone(),
            pattern,
            min,
            max,
        };
        if let Some(default) = &spec.default
            && spec.kind != ParamType::Component
        {
            def.parse(&default.to_string(), &|id| Ok(id.to_string()))
                .map_err(|e| format!("default: {e}"))?;
        }
        Ok(def)
    }

    /// The parameter's name.
    pub fn name(&self) -> &str {
        &self.spec.name
    }

    /// Parses a value given as text.
    pub fn parse(&self, raw: &str, component: &ComponentCheck<'_>) -> Result<ParamValue, String> {
        let raw = raw.trim();
        if raw.chars().any(char::is_control) {
            return Err("must be one line without control characters".into());
        }
        if raw.chars().count() > MAX_TEXT {
            return Err(format!("is longer than {MAX_TEXT} characters"));
        }
        let in_bounds = |n: i64, unit: &str| -> Result<(), String> {
            if let Some(min) = self.min
                && n < min
            {
                return Err(format!("must be at least {min}{unit}"));
            }
            if let Some(max) = self.max
                && n > max
            {
                return Err(format!("must be at most {max}{unit}"));
            }
            Ok(())
        };
        match self.spec.kind {
            ParamType::String => {
                if raw.is_empty() {
                    return Err("must not be empty".into());
                }
                in_bounds(
                    i64::try_from(raw.chars().count()).unwrap_or(i64::MAX),
                    " characters",
                )?;
                if let Some(pattern) = &self.pattern
                    && !pattern.is_match(raw)
                {
                    return Err(format!(
                        "`{raw}` does not match the pattern {}",
                        self.spec.pattern.as_deref().unwrap_or_default()
                    ));
                }
                Ok(ParamValue::Text(raw.to_string()))
            }
            ParamType::Integer => {
                let n: i64 = raw
                    .parse()
                    .map_err(|_| format!("`{raw}` is not a whole number"))?;
                in_bounds(n, "")?;
                Ok(ParamValue::Integer(n))
            }
            ParamType::Boolean => match raw.to_ascii_lowercase().as_str() {
                "true" | "yes" | "on" => Ok(ParamValue::Bool(true)),
                "false" | "no" | "off" => Ok(ParamValue::Bool(false)),
                _ => Err(format!("`{raw}` is not true or false")),
            },
            ParamType::Enum => self
                .spec
                .values
                .iter()
                .find(|v| v.as_str() == raw)
                .map(|v| ParamValue::Text(v.clone()))
                .ok_or_else(|| format!("`{raw}` is not one of {}", self.spec.values.join(", "))),
            ParamType::Duration => {
                let duration: HumanDuration = raw
                    .parse()
                    .map_err(|e: crate::config::DurationError| e.to_string())?;
                in_bounds(duration.as_chrono().num_seconds(), " seconds")?;
                Ok(ParamValue::Duration(raw.to_string()))
            }
            ParamType::Component => component(raw).map(ParamValue::Text),
        }
    }

    /// A value for checking templates at load: the default, or one of the type.
    pub fn sample(&self) -> ParamValue {
        if let Some(default) = &self.spec.default
            && let Ok(value) = self.parse(&default.to_string(), &|id| Ok(id.to_string()))
        {
            return value;
        }
        match self.spec.kind {
            ParamType::Integer => ParamValue::Integer(self.min.unwrap_or(1)),
            ParamType::Boolean => ParamValue::Bool(true),
            ParamType::Enum => {
                ParamValue::Text(self.spec.values.first().cloned().unwrap_or_default())
            }
            ParamType::Duration => ParamValue::Duration("5m".into()),
            ParamType::String | ParamType::Component => ParamValue::Text("sample".into()),
        }
    }
}

/// Why a request's parameters were refused: one sentence per problem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamProblems {
    /// `name: problem`, in the playbook's order.
    pub problems: Vec<String>,
    /// Required parameters nobody gave (the modal asks for them).
    pub missing: Vec<String>,
}

/// Parses `given` against `defs`: unknown keys, missing required values and
/// bad values are all reported at once.
pub fn parse_all(
    defs: &[ParamDef],
    given: &BTreeMap<String, String>,
    component: &ComponentCheck<'_>,
) -> Result<Params, ParamProblems> {
    let mut problems = Vec::new();
    let mut missing = Vec::new();
    for key in given.keys() {
        if !defs.iter().any(|d| d.name() == key) {
            let known: Vec<&str> = defs.iter().map(ParamDef::name).collect();
            problems.push(format!(
                "{key}: this playbook has no such parameter (it takes {})",
                if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                }
            ));
        }
    }
    let mut params = Params::new();
    for def in defs {
        let raw = given
            .get(def.name())
            .cloned()
            .or_else(|| def.spec.default.as_ref().map(ToString::to_string));
        match raw {
            Some(raw) => match def.parse(&raw, component) {
                Ok(value) => {
                    params.insert(def.name().to_string(), value);
                }
                Err(problem) => problems.push(format!("{}: {problem}", def.name())),
            },
            None if def.spec.required => missing.push(def.name().to_string()),
            None => {}
        }
    }
    if problems.is_empty() && missing.is_empty() {
        Ok(params)
    } else {
        Err(ParamProblems { problems, missing })
    }
}

/// A regex error in one line: `regex` draws the pattern with a caret under the
/// fault over several lines; the reason is the `error:` line.
fn regex_reason(e: &regex::Error) -> String {
    let text = e.to_string();
    text.lines()
        .rev()
        .find_map(|l| l.trim().strip_prefix("error: "))
        .map(str::to_string)
        .unwrap_or_else(|| text.split_whitespace().collect::<Vec<_>>().join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn def(yaml: &str) -> ParamDef {
        ParamDef::new(&serde_yaml::from_str::<Parameter>(yaml).unwrap()).unwrap()
    }

    fn any(id: &str) -> Result<String, String> {
        Ok(id.to_string())
    }

    #[test]
    fn values_are_typed_and_bounded() {
        let replicas = def("{ name: replicas, type: integer, min: 1, max: 20 }");
        assert_eq!(replicas.parse("5", &any), Ok(ParamValue::Integer(5)));
        assert!(
            replicas
                .parse("0", &any)
                .unwrap_err()
                .contains("at least 1")
        );
        assert!(replicas.parse("5; rm -rf /", &any).is_err());
        let version = def(r"{ name: version, type: string, pattern: '\d+\.\d+\.\d+' }");
        assert!(version.parse("1.2.3", &any).is_ok());
        assert!(
            version.parse("1.2.3\nkind: Secret", &any).is_err(),
            "no new lines"
        );
        assert!(
            version.parse("1.2.3 # x", &any).is_err(),
            "whole value matches"
        );
        let env = def("{ name: env, type: enum, values: [staging, prod] }");
        assert!(
            env.parse("dev", &any)
                .unwrap_err()
                .contains("staging, prod")
        );
        let wait = def("{ name: wait, type: duration, max: 1h }");
        assert!(wait.parse("30m", &any).is_ok());
        assert!(wait.parse("2h", &any).is_err());
        let flag = def("{ name: force, type: boolean, default: false }");
        assert_eq!(flag.parse("yes", &any), Ok(ParamValue::Bool(true)));
        let component = def("{ name: component, type: component }");
        assert!(component.parse("x", &|_| Err("not yours".into())).is_err());
    }

    #[test]
    fn bad_definitions_are_refused() {
        for yaml in [
            "{ name: Bad, type: string }",
            "{ name: x, type: integer, pattern: 'a' }",
            "{ name: x, type: string, pattern: '(' }",
            "{ name: x, type: enum }",
            "{ name: x, type: integer, min: 5, max: 1 }",
            "{ name: x, type: integer, default: many }",
            "{ name: x, type: duration, min: 5 }",
        ] {
            let spec: Parameter = serde_yaml::from_str(yaml).unwrap();
            assert!(ParamDef::new(&spec).is_err(), "{yaml}");
        }
    }

    #[test]
    fn a_request_reports_every_problem_and_what_is_missing() {
        let defs = [
            def("{ name: a, type: integer, required: true }"),
            def("{ name: b, type: string, required: true }"),
            def("{ name: c, type: boolean, default: true }"),
        ];
        let given = BTreeMap::from([
            ("a".to_string(), "x".to_string()),
            ("zz".to_string(), "1".to_string()),
        ]);
        let err = parse_all(&defs, &given, &any).unwrap_err();
        assert_eq!(err.missing, ["b"]);
        assert_eq!(err.problems.len(), 2, "{err:?}");
        let given = BTreeMap::from([
            ("a".to_string(), "3".to_string()),
            ("b".to_string(), "x".to_string()),
        ]);
        let params = parse_all(&defs, &given, &any).unwrap();
        assert_eq!(params["c"], ParamValue::Bool(true));
    }

    proptest! {
        #[test]
        fn accepted_strings_are_one_line(text in "\\PC*") {
            let free = def("{ name: s, type: string }");
            if let Ok(ParamValue::Text(value)) = free.parse(&text, &any) {
                prop_assert!(!value.contains('\n') && !value.contains('\r'));
            }
        }
    }
}
