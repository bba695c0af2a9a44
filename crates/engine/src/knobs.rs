//! The knob schema: how an engine describes its knobs (in
//! `session_ready.info.knobs`, which becomes the client's
//! `ready.engine.knobs`), so any client can draw them. A list of objects:
//!
//! - number: `{"name", "kind": "number", "min", "max", "step"?, "default",
//!   "unit"?, "label"?}` — without `kind` but with `min`/`max` it is a
//!   number (older engines); `value` is accepted for `default`;
//! - choice: `{"name", "kind": "choice", "options": [str | {"value", "label"}],
//!   "default", "label"?}`;
//! - toggle: `{"name", "kind": "toggle", "default": bool, "label"?}`.
//!
//! [`validate`] checks a list when an engine answers; unknown extra fields
//! are allowed (newer engines), wrong ones are refused with a message that
//! names the knob and the field.

use std::collections::HashSet;

use serde_json::{Map, Value};

/// Most knobs in one list.
pub const MAX_KNOBS: usize = 64;
/// Longest knob name, label, unit or choice value, in bytes.
pub const MAX_TEXT: usize = 128;
/// Most options of a choice knob.
pub const MAX_OPTIONS: usize = 256;

/// Checks a knob list; `Err` says what is wrong, for the engine's developer.
pub fn validate(knobs: &Value) -> Result<(), String> {
    let list = knobs.as_array().ok_or("knobs must be a list of objects")?;
    if list.len() > MAX_KNOBS {
        return Err(format!("{} knobs; at most {MAX_KNOBS}", list.len()));
    }
    let mut names = HashSet::new();
    for (i, knob) in list.iter().enumerate() {
        let obj = knob
            .as_object()
            .ok_or_else(|| format!("knob {i} is not an object"))?;
        let name = text(obj, "name", true)
            .map_err(|e| format!("knob {i}: {e}"))?
            .unwrap_or_default();
        let at = |e: String| format!("knob {i} ({name:?}): {e}");
        if !names.insert(name.to_owned()) {
            return Err(at("the name is used twice".into()));
        }
        text(obj, "label", false).map_err(at)?;
        match obj.get("kind") {
            None if obj.contains_key("min") || obj.contains_key("max") => number(obj),
            None => Err("no \"kind\" (number, choice or toggle)".into()),
            Some(Value::String(k)) if k == "number" => number(obj),
            Some(Value::String(k)) if k == "choice" => choice(obj),
            Some(Value::String(k)) if k == "toggle" => match obj.get("default") {
                Some(Value::Bool(_)) => Ok(()),
                _ => Err("a toggle's \"default\" must be true or false".into()),
            },
            Some(other) => Err(format!(
                "unknown kind {other}; use \"number\", \"choice\" or \"toggle\""
            )),
        }
        .map_err(at)?;
    }
    Ok(())
}

/// An optional (or required) short string field.
fn text<'a>(
    obj: &'a Map<String, Value>,
    field: &str,
    required: bool,
) -> Result<Option<&'a str>, String> {
    match obj.get(field) {
        None if required => Err(format!("no \"{field}\"")),
        None => Ok(None),
        Some(Value::String(s)) if s.is_empty() && required => Err(format!("\"{field}\" is empty")),
        Some(Value::String(s)) if s.len() > MAX_TEXT => {
            Err(format!("\"{field}\" is longer than {MAX_TEXT} bytes"))
        }
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(format!("\"{field}\" must be a string")),
    }
}

fn finite(obj: &Map<String, Value>, field: &str) -> Result<Option<f64>, String> {
    match obj.get(field) {
        None => Ok(None),
        Some(v) => v
            .as_f64()
            .filter(|v| v.is_finite())
            .map(Some)
            .ok_or_else(|| format!("\"{field}\" must be a number")),
    }
}

fn number(obj: &Map<String, Value>) -> Result<(), String> {
    let min = finite(obj, "min")?.ok_or("a number knob needs \"min\"")?;
    let max = finite(obj, "max")?.ok_or("a number knob needs \"max\"")?;
    if min > max {
        return Err(format!("\"min\" {min} is above \"max\" {max}"));
    }
    if let Some(step) = finite(obj, "step")? {
        if step <= 0.0 {
            return Err(format!("\"step\" {step} must be above 0"));
        }
    }
    let default = match finite(obj, "default")? {
        Some(d) => d,
        None => finite(obj, "value")?.ok_or("a number knob needs \"default\"")?,
    };
    if !(min..=max).contains(&default) {
        return Err(format!("\"default\" {default} is outside [{min}, {max}]"));
    }
    text(obj, "unit", false)?;
    Ok(())
}

fn choice(obj: &Map<String, Value>) -> Result<(), String> {
    let options = obj
        .get("options")
        .and_then(Value::as_array)
        .ok_or("a choice knob needs \"options\", a list")?;
    if options.is_empty() || options.len() > MAX_OPTIONS {
        return Err(format!("a choice needs 1 to {MAX_OPTIONS} options"));
    }
    let mut values = Vec::with_capacity(options.len());
    for (j, opt) in options.iter().enumerate() {
        let value = match opt {
            Value::String(s) => s.as_str(),
            Value::Object(o) => {
                text(o, "label", true).map_err(|e| format!("option {j}: {e}"))?;
                text(o, "value", true)
                    .map_err(|e| format!("option {j}: {e}"))?
                    .unwrap_or_default()
            }
            _ => {
                return Err(format!(
                    "option {j} must be a string or {{\"value\", \"label\"}}"
                ))
            }
        };
        if value.len() > MAX_TEXT {
            return Err(format!("option {j} is longer than {MAX_TEXT} bytes"));
        }
        values.push(value);
    }
    match obj.get("default") {
        Some(Value::String(d)) if values.contains(&d.as_str()) => Ok(()),
        Some(Value::String(d)) => Err(format!("\"default\" {d:?} is not one of the options")),
        _ => Err("a choice's \"default\" must be one of its options (a string)".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn good_lists_pass() {
        validate(&json!([])).unwrap();
        validate(&json!([
            {"name": "tempo", "kind": "number", "min": 60, "max": 180, "step": 1, "default": 120, "unit": "bpm", "label": "Tempo"},
            {"name": "old", "min": 0, "max": 1, "value": 0.5},
            {"name": "wave", "kind": "choice", "options": ["sine", {"value": "saw", "label": "Saw"}], "default": "saw"},
            {"name": "mute", "kind": "toggle", "default": false, "future_field": 1},
        ]))
        .unwrap();
    }

    #[test]
    fn bad_lists_say_which_knob_and_why() {
        for (knobs, says) in [
            (json!({"name": "x"}), "list"),
            (json!([1]), "knob 0 is not an object"),
            (json!([{"kind": "toggle", "default": true}]), "no \"name\""),
            (json!([{"name": "a", "kind": "dial"}]), "unknown kind"),
            (json!([{"name": "a"}]), "no \"kind\""),
            (
                json!([{"name": "a", "kind": "number", "min": 2, "max": 1, "default": 1}]),
                "above",
            ),
            (
                json!([{"name": "a", "kind": "number", "min": 0, "max": 1}]),
                "default",
            ),
            (
                json!([{"name": "a", "kind": "number", "min": 0, "max": 1, "default": 2}]),
                "outside",
            ),
            (
                json!([{"name": "a", "kind": "number", "min": 0, "max": 1, "default": 0, "step": 0}]),
                "step",
            ),
            (
                json!([{"name": "a", "kind": "number", "min": "0", "max": 1, "default": 0}]),
                "\"min\" must be a number",
            ),
            (
                json!([{"name": "a", "kind": "choice", "options": [], "default": "x"}]),
                "options",
            ),
            (
                json!([{"name": "a", "kind": "choice", "options": ["x"], "default": "y"}]),
                "not one of",
            ),
            (
                json!([{"name": "a", "kind": "choice", "options": [{"value": "x"}], "default": "x"}]),
                "option 0",
            ),
            (
                json!([{"name": "a", "kind": "toggle", "default": 1}]),
                "true or false",
            ),
            (
                json!([{"name": "a", "kind": "toggle", "default": true}, {"name": "a", "kind": "toggle", "default": true}]),
                "twice",
            ),
            (
                json!([{"name": "a", "kind": "toggle", "default": true, "label": 3}]),
                "label",
            ),
        ] {
            let err = validate(&knobs).unwrap_err();
            assert!(err.contains(says), "{knobs}: {err}");
        }
    }
}
