//! Typed access to task-definition JSON that reports the path of a field of the wrong type.

use super::TransformError;
use serde_json::{Map, Value};

/// The JSON type of a value, as error messages name it.
pub(crate) fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn wrong(path: String, expected: &'static str, found: &Value) -> TransformError {
    TransformError::WrongType {
        path,
        expected,
        found: kind(found),
    }
}

/// Removes every object member whose value is `null`, at any depth: ECS and the AWS CLI treat a
/// missing field and a `null` one alike on input, but the CLI rejects `null`s.
pub(crate) fn strip_nulls(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.retain(|_, v| !v.is_null());
            map.values_mut().for_each(strip_nulls);
        }
        Value::Array(items) => items.iter_mut().for_each(strip_nulls),
        _ => {}
    }
}

/// The path of member `key` of the object at `path` (`""` is the document root).
pub(crate) fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// `obj[key]` as a string, `None` when absent.
pub(crate) fn opt_str<'a>(
    obj: &'a Map<String, Value>,
    key: &str,
    path: &str,
) -> Result<Option<&'a str>, TransformError> {
    match obj.get(key) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(wrong(join(path, key), "a string", other)),
    }
}

/// `obj[key]` as an array of strings; `None` when absent or empty (ECS treats both alike).
pub(crate) fn opt_string_array(
    obj: &Map<String, Value>,
    key: &str,
    path: &str,
) -> Result<Option<Vec<String>>, TransformError> {
    let Some(value) = obj.get(key) else {
        return Ok(None);
    };
    let Value::Array(items) = value else {
        return Err(wrong(join(path, key), "an array of strings", value));
    };
    let strings = items
        .iter()
        .enumerate()
        .map(|(i, item)| match item {
            Value::String(s) => Ok(s.clone()),
            other => Err(wrong(
                format!("{}[{i}]", join(path, key)),
                "a string",
                other,
            )),
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok((!strings.is_empty()).then_some(strings))
}

/// `obj[key]` as an array, `None` when absent.
pub(crate) fn opt_array<'a>(
    obj: &'a Map<String, Value>,
    key: &str,
    path: &str,
) -> Result<Option<&'a Vec<Value>>, TransformError> {
    match obj.get(key) {
        None => Ok(None),
        Some(Value::Array(items)) => Ok(Some(items)),
        Some(other) => Err(wrong(join(path, key), "an array", other)),
    }
}

/// `obj[key]` as a mutable array, created empty when absent.
pub(crate) fn array_mut<'a>(
    obj: &'a mut Map<String, Value>,
    key: &str,
    path: &str,
) -> Result<&'a mut Vec<Value>, TransformError> {
    match obj
        .entry(key.to_string())
        .or_insert_with(|| Value::Array(Vec::new()))
    {
        Value::Array(items) => Ok(items),
        other => Err(wrong(join(path, key), "an array", other)),
    }
}

/// `obj[key]` as a mutable object, created empty when absent.
pub(crate) fn object_mut<'a>(
    obj: &'a mut Map<String, Value>,
    key: &str,
    path: &str,
) -> Result<&'a mut Map<String, Value>, TransformError> {
    match obj
        .entry(key.to_string())
        .or_insert_with(|| Value::Object(Map::new()))
    {
        Value::Object(map) => Ok(map),
        other => Err(wrong(join(path, key), "an object", other)),
    }
}

/// Item `i` of an array as an object.
pub(crate) fn item_object<'a>(
    item: &'a Value,
    path: &str,
    i: usize,
) -> Result<&'a Map<String, Value>, TransformError> {
    match item {
        Value::Object(map) => Ok(map),
        other => Err(wrong(format!("{path}[{i}]"), "an object", other)),
    }
}

/// Checks that every item of `obj[key]` is an object with a string `name`; returns the names.
pub(crate) fn named_items(
    obj: &Map<String, Value>,
    key: &str,
    path: &str,
) -> Result<Vec<String>, TransformError> {
    let Some(items) = opt_array(obj, key, path)? else {
        return Ok(Vec::new());
    };
    let list = join(path, key);
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let item = item_object(item, &list, i)?;
            match item.get("name") {
                Some(Value::String(name)) => Ok(name.clone()),
                Some(other) => Err(wrong(format!("{list}[{i}].name"), "a string", other)),
                None => Err(TransformError::MissingName {
                    path: format!("{list}[{i}].name"),
                }),
            }
        })
        .collect()
}

/// A JSON array of strings.
pub(crate) fn strings<I, S>(items: I) -> Value
where
    I: IntoIterator<Item = S>,
    S: Into<String>,
{
    Value::Array(items.into_iter().map(|s| Value::String(s.into())).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn strip_nulls_at_every_depth() {
        let mut v = json!({"a": null, "b": [{"c": null, "d": 1}, null], "e": {"f": null}});
        strip_nulls(&mut v);
        assert_eq!(v, json!({"b": [{"d": 1}, null], "e": {}}));
    }

    #[test]
    fn string_arrays() {
        let obj = json!({"a": [], "b": ["x"], "c": [1], "d": "x"});
        let obj = obj.as_object().unwrap();
        assert_eq!(opt_string_array(obj, "a", "p"), Ok(None));
        assert_eq!(opt_string_array(obj, "b", "p"), Ok(Some(vec!["x".into()])));
        assert_eq!(opt_string_array(obj, "z", "p"), Ok(None));
        assert_eq!(
            opt_string_array(obj, "c", "p").unwrap_err().to_string(),
            "p.c[0]: expected a string, found a number"
        );
        assert_eq!(
            opt_string_array(obj, "d", "p").unwrap_err().to_string(),
            "p.d: expected an array of strings, found a string"
        );
    }
}
