//! Applying the result of a `system.log.mask` rule to a decision-log event, with OPA's
//! semantics (`plugins/logs/mask.go`): paths under `/input` or `/result`, absent paths
//! skipped silently, erased paths listed in `erased` and upserted ones in `masked`.

use serde_json::{Map, Value};

use crate::decision_log::DecisionEvent;
use crate::error::PolicyError;

/// Which part of the event a mask path addresses.
#[derive(Clone, Copy)]
enum Target {
    Input,
    Result,
}

enum Op {
    Remove,
    Upsert(Value),
}

struct Mask {
    path: String,
    target: Target,
    segments: Vec<String>,
    op: Op,
}

/// Applies every mask in `rules` (the rule's value: a set of paths and/or op objects).
///
/// All masks are parsed before any is applied, so a malformed rule changes nothing.
pub(crate) fn apply(rules: &Value, event: &mut DecisionEvent) -> Result<(), PolicyError> {
    let Value::Array(items) = rules else {
        return Err(PolicyError::Mask(
            "the rule is not a set or array".to_string(),
        ));
    };
    let masks = items.iter().map(parse).collect::<Result<Vec<_>, _>>()?;
    for mask in masks {
        let applied = match mask.target {
            Target::Input if event.input.is_null() => false,
            Target::Input if mask.segments.is_empty() => {
                event.input = match &mask.op {
                    Op::Remove => Value::Null,
                    Op::Upsert(value) => value.clone(),
                };
                true
            }
            Target::Input => apply_at(&mut event.input, &mask),
            Target::Result => match (&mut event.result, &mask.op) {
                (None, _) => false,
                (result @ Some(_), Op::Remove) if mask.segments.is_empty() => {
                    *result = None;
                    true
                }
                (Some(result), Op::Upsert(value)) if mask.segments.is_empty() => {
                    *result = value.clone();
                    true
                }
                (Some(result), _) => apply_at(result, &mask),
            },
        };
        if applied {
            match mask.op {
                Op::Remove => event.erased.push(mask.path),
                Op::Upsert(_) => event.masked.push(mask.path),
            }
        }
    }
    Ok(())
}

fn apply_at(root: &mut Value, mask: &Mask) -> bool {
    match &mask.op {
        Op::Remove => remove(root, &mask.segments),
        Op::Upsert(value) => upsert(root, &mask.segments, value.clone()),
    }
}

fn parse(item: &Value) -> Result<Mask, PolicyError> {
    let invalid = |why: String| PolicyError::Mask(why);
    let (path, op) = match item {
        Value::String(path) => (path.clone(), Op::Remove),
        Value::Object(fields) => {
            let path = fields.get("path").and_then(Value::as_str);
            let path = path.ok_or_else(|| invalid(format!("mask {item} has no string path")))?;
            let op = match fields.get("op").and_then(Value::as_str) {
                Some("remove") => Op::Remove,
                Some("upsert") => Op::Upsert(fields.get("value").cloned().unwrap_or(Value::Null)),
                _ => {
                    return Err(invalid(format!(
                        "mask {item} has no op 'remove' or 'upsert'"
                    )))
                }
            };
            (path.to_string(), op)
        }
        other => {
            return Err(invalid(format!(
                "mask {other} is neither a path nor an object"
            )))
        }
    };
    let Some(rest) = path.strip_prefix('/') else {
        return Err(invalid(format!("mask path '{path}' is not slash-prefixed")));
    };
    let mut segments: Vec<String> = rest.split('/').map(str::to_string).collect();
    let target = match segments.remove(0).as_str() {
        "input" => Target::Input,
        "result" => Target::Result,
        other => {
            return Err(invalid(format!(
                "mask prefix '{other}' not allowed in '{path}'"
            )))
        }
    };
    Ok(Mask {
        path,
        target,
        segments,
        op,
    })
}

/// Walks `segments` from `node`, through object keys and array indices.
fn walk<'a>(mut node: &'a mut Value, segments: &[String]) -> Option<&'a mut Value> {
    for segment in segments {
        node = match node {
            Value::Object(members) => members.get_mut(segment)?,
            Value::Array(items) => items.get_mut(segment.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(node)
}

/// Removes the value at `segments`; false when it is absent.
fn remove(root: &mut Value, segments: &[String]) -> bool {
    let Some((last, parents)) = segments.split_last() else {
        return false;
    };
    match walk(root, parents) {
        Some(Value::Object(members)) => members.remove(last).is_some(),
        Some(Value::Array(items)) => match last.parse::<usize>() {
            Ok(index) if index < items.len() => {
                items.remove(index);
                true
            }
            _ => false,
        },
        _ => false,
    }
}

/// Sets the value at `segments`, creating missing objects on the way; false when the way
/// is blocked by a non-object or an array index out of range.
fn upsert(root: &mut Value, segments: &[String], value: Value) -> bool {
    let Some((last, parents)) = segments.split_last() else {
        return false;
    };
    let mut node = root;
    for segment in parents {
        node = match node {
            Value::Object(members) => members
                .entry(segment.clone())
                .or_insert_with(|| Value::Object(Map::new())),
            Value::Array(items) => {
                match segment.parse::<usize>().ok().and_then(|i| items.get_mut(i)) {
                    Some(item) => item,
                    None => return false,
                }
            }
            _ => return false,
        };
    }
    match node {
        Value::Object(members) => {
            members.insert(last.clone(), value);
            true
        }
        Value::Array(items) => match last.parse::<usize>().ok().and_then(|i| items.get_mut(i)) {
            Some(item) => {
                *item = value;
                true
            }
            None => false,
        },
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn event(input: Value, result: Option<Value>) -> DecisionEvent {
        serde_json::from_value(json!({
            "decision_id": "d-1",
            "path": "blindledger/authz/decision",
            "timestamp": "2026-12-07T00:00:00Z",
        }))
        .map(|mut event: DecisionEvent| {
            event.input = input;
            event.result = result;
            event
        })
        .unwrap()
    }

    fn refusal(rules: Value) -> String {
        let mut masked = event(json!({"token": "t"}), Some(json!(true)));
        let before = masked.clone();
        let message = match apply(&rules, &mut masked) {
            Ok(()) => panic!("{rules} accepted"),
            Err(error) => error.to_string(),
        };
        assert_eq!(masked, before, "a refused rule changes nothing");
        message
    }

    #[test]
    fn malformed_rules_are_refused_before_any_mask_is_applied() {
        assert!(refusal(json!({"path": "/input/token"})).contains("not a set or array"));
        // The first mask is valid: it is not applied either.
        let message = refusal(json!(["/input/token", {"path": "/input/x", "op": "hide"}]));
        assert!(message.contains("no op 'remove' or 'upsert'"), "{message}");
        let message = refusal(json!([{"op": "remove"}]));
        assert!(message.contains("has no string path"), "{message}");
        let message = refusal(json!([42]));
        assert!(
            message.contains("neither a path nor an object"),
            "{message}"
        );
        let message = refusal(json!(["input/token"]));
        assert!(message.contains("not slash-prefixed"), "{message}");
        let message = refusal(json!(["/labels/id"]));
        assert!(message.contains("prefix 'labels' not allowed"), "{message}");
    }

    #[test]
    fn paths_through_objects_and_arrays_are_removed_or_replaced() {
        let input = json!({
            "token": "secret",
            "accounts": ["a", "b", "c"],
            "nested": {"keep": 1, "drop": 2},
            "scalar": 5,
        });
        let mut masked = event(input, Some(json!({"allow": true, "reasons": ["r1", "r2"]})));
        let rules = json!([
            "/input/token",
            "/input/accounts/1",
            "/input/nested/drop",
            {"path": "/input/nested/added/deep", "op": "upsert", "value": "x"},
            {"path": "/input/accounts/0", "op": "upsert", "value": "A"},
            {"path": "/result/reasons/0", "op": "upsert"},
            // Absent, out of range or through a scalar: skipped silently, not listed.
            "/input/missing",
            "/input/accounts/9",
            "/input/accounts/x",
            {"path": "/input/accounts/9", "op": "upsert", "value": 1},
            {"path": "/input/scalar/below", "op": "upsert", "value": 1},
            "/input/scalar/below",
        ]);
        apply(&rules, &mut masked).unwrap();
        assert_eq!(
            masked.input,
            json!({
                "accounts": ["A", "c"],
                "nested": {"keep": 1, "added": {"deep": "x"}},
                "scalar": 5,
            })
        );
        assert_eq!(
            masked.result,
            Some(json!({"allow": true, "reasons": [null, "r2"]}))
        );
        assert_eq!(
            masked.erased,
            ["/input/token", "/input/accounts/1", "/input/nested/drop"]
        );
        assert_eq!(
            masked.masked,
            [
                "/input/nested/added/deep",
                "/input/accounts/0",
                "/result/reasons/0"
            ]
        );
    }

    #[test]
    fn the_whole_input_or_result_can_be_erased_or_replaced() {
        let mut erased = event(json!({"token": "t"}), Some(json!(true)));
        apply(&json!(["/input", "/result"]), &mut erased).unwrap();
        assert_eq!(
            (erased.input.clone(), erased.result.clone()),
            (Value::Null, None)
        );
        assert_eq!(erased.erased, ["/input", "/result"]);
        // Nothing left to mask: later masks are skipped.
        apply(&json!(["/input/token", "/result/allow"]), &mut erased).unwrap();
        assert_eq!(erased.erased, ["/input", "/result"]);

        let mut replaced = event(json!({"token": "t"}), Some(json!(true)));
        let rules = json!([
            {"path": "/input", "op": "upsert", "value": {"redacted": true}},
            {"path": "/result", "op": "upsert", "value": "hidden"},
        ]);
        apply(&rules, &mut replaced).unwrap();
        assert_eq!(replaced.input, json!({"redacted": true}));
        assert_eq!(replaced.result, Some(json!("hidden")));
        assert_eq!(replaced.masked, ["/input", "/result"]);
    }
}
