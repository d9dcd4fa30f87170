//! A value that is a whole JSON document (`?filter={"and":[{"tag":"sale"}]}`): its quotes delimit
//! JSON strings, not SQL ones, so it is judged by its keys and string leaves, each on its own.

/// Deepest nesting walked; a deeper document is judged as plain text.
const MAX_DEPTH: usize = 32;

/// `Some(verdict)` when `value` parses as a JSON object or array: whether any key or string leaf
/// is an injection. `None` for anything else (judge the text as it is).
pub(super) fn document(value: &str, detect: &dyn Fn(&str) -> bool) -> Option<bool> {
    let v = value.trim();
    let framed =
        (v.starts_with('{') && v.ends_with('}')) || (v.starts_with('[') && v.ends_with(']'));
    if !framed || !v.contains('"') {
        return None;
    }
    let doc: serde_json::Value = serde_json::from_str(v).ok()?;
    let mut hit = false;
    walk(&doc, 0, &mut |s| hit = hit || detect(s))?;
    Some(hit)
}

/// Call `f` on every key and string leaf; `None` past [`MAX_DEPTH`].
fn walk(v: &serde_json::Value, depth: usize, f: &mut dyn FnMut(&str)) -> Option<()> {
    if depth > MAX_DEPTH {
        return None;
    }
    match v {
        serde_json::Value::String(s) => f(s),
        serde_json::Value::Array(items) => {
            for item in items {
                walk(item, depth + 1, f)?;
            }
        }
        serde_json::Value::Object(map) => {
            for (k, item) in map {
                f(k);
                walk(item, depth + 1, f)?;
            }
        }
        _ => {}
    }
    Some(())
}
