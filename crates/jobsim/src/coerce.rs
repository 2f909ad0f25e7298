//! Lenient reading of request parameters the way JOB's Jackson reads them: strings coerce
//! to numbers and booleans (`"2"` -> 2, `"True"` -> true), numbers coerce to strings,
//! missing and `null` mean the same, unknown fields are ignored. A value that cannot be
//! coerced is a `BadType`, which JOB reports as `1240003 Bad Request`.

use serde_json::{Map, Value};

/// A value of the wrong JSON type for its field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BadType;

pub(crate) type Coerced<T> = Result<Option<T>, BadType>;

/// A request's parameters: a JSON object (body, or query strings as a flat object).
#[derive(Debug, Clone, Default)]
pub(crate) struct Params(pub(crate) Map<String, Value>);

impl Params {
    pub(crate) fn get(&self, key: &str) -> Option<&Value> {
        self.0.get(key).filter(|v| !v.is_null())
    }
    pub(crate) fn has(&self, key: &str) -> bool {
        self.get(key).is_some()
    }
    pub(crate) fn i64(&self, key: &str) -> Coerced<i64> {
        self.get(key).map(to_i64).transpose()
    }
    pub(crate) fn string(&self, key: &str) -> Coerced<String> {
        self.get(key).map(to_string).transpose()
    }
    pub(crate) fn bool(&self, key: &str) -> Coerced<bool> {
        self.get(key).map(to_bool).transpose()
    }
    pub(crate) fn array(&self, key: &str) -> Coerced<Vec<Value>> {
        self.get(key).map(to_array).transpose()
    }
    pub(crate) fn object(&self, key: &str) -> Coerced<Params> {
        self.get(key).map(to_object).transpose()
    }
}

pub(crate) fn to_i64(v: &Value) -> Result<i64, BadType> {
    match v {
        Value::Number(n) => n
            .as_i64()
            // Jackson accepts floats for integer fields and truncates them.
            .or_else(|| {
                n.as_f64()
                    .filter(|f| f.is_finite())
                    .map(|f| f.trunc() as i64)
            })
            .ok_or(BadType),
        Value::String(s) => {
            let t = s.trim();
            t.parse::<i64>()
                .ok()
                .or_else(|| {
                    t.parse::<f64>()
                        .ok()
                        .filter(|f| f.is_finite())
                        .map(|f| f as i64)
                })
                .ok_or(BadType)
        }
        _ => Err(BadType),
    }
}

pub(crate) fn to_string(v: &Value) -> Result<String, BadType> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        _ => Err(BadType),
    }
}

pub(crate) fn to_bool(v: &Value) -> Result<bool, BadType> {
    match v {
        Value::Bool(b) => Ok(*b),
        Value::Number(n) => Ok(n.as_f64().is_some_and(|f| f != 0.0)),
        Value::String(s) => match s.trim() {
            t if t.eq_ignore_ascii_case("true") => Ok(true),
            t if t.eq_ignore_ascii_case("false") => Ok(false),
            "1" => Ok(true),
            "0" | "" => Ok(false),
            _ => Err(BadType),
        },
        _ => Err(BadType),
    }
}

pub(crate) fn to_array(v: &Value) -> Result<Vec<Value>, BadType> {
    match v {
        Value::Array(a) => Ok(a.clone()),
        _ => Err(BadType),
    }
}

pub(crate) fn to_object(v: &Value) -> Result<Params, BadType> {
    match v {
        Value::Object(m) => Ok(Params(m.clone())),
        _ => Err(BadType),
    }
}

/// Reads an array whose items must be objects.
pub(crate) fn object_list(p: &Params, key: &str) -> Coerced<Vec<Params>> {
    match p.array(key)? {
        None => Ok(None),
        Some(items) => items
            .iter()
            .filter(|v| !v.is_null())
            .map(to_object)
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
    }
}

/// Reads an array whose items must be strings (or scalars coerced to strings).
pub(crate) fn string_list(p: &Params, key: &str) -> Coerced<Vec<String>> {
    match p.array(key)? {
        None => Ok(None),
        Some(items) => items
            .iter()
            .map(|v| {
                if v.is_null() {
                    Ok(String::new())
                } else {
                    to_string(v)
                }
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
    }
}

/// Reads an array whose items must be integers.
pub(crate) fn i64_list(p: &Params, key: &str) -> Coerced<Vec<i64>> {
    match p.array(key)? {
        None => Ok(None),
        Some(items) => items
            .iter()
            .filter(|v| !v.is_null())
            .map(to_i64)
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn coercions() {
        assert_eq!(to_i64(&json!("2")), Ok(2));
        assert_eq!(to_i64(&json!(2.7)), Ok(2));
        assert_eq!(to_i64(&json!("abc")), Err(BadType));
        assert_eq!(to_bool(&json!("True")), Ok(true));
        assert_eq!(to_bool(&json!("false")), Ok(false));
        assert_eq!(to_bool(&json!("maybe")), Err(BadType));
        assert_eq!(to_string(&json!(5)), Ok("5".into()));
        assert_eq!(to_string(&json!([1])), Err(BadType));
    }
}
