//! Deserialisation helpers for JOB's habit of writing `null` where a value is absent.

use serde::{Deserialize, Deserializer};

/// `null` or missing -> `T::default()`.
pub(crate) fn null_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

/// A JOB id (`job_instance_id`, `step_instance_id`): JOB hands out positive longs only, so 0 or
/// a negative number is an answer that cannot be JOB's, refused as such rather than recorded.
pub(crate) fn positive_id<'de, D>(deserializer: D) -> Result<i64, D::Error>
where
    D: Deserializer<'de>,
{
    let id = i64::deserialize(deserializer)?;
    check_id(id).map_err(serde::de::Error::custom)
}

/// As [`positive_id`] for an id that may be absent (`null` or missing).
pub(crate) fn positive_id_opt<'de, D>(deserializer: D) -> Result<Option<i64>, D::Error>
where
    D: Deserializer<'de>,
{
    Option::<i64>::deserialize(deserializer)?
        .map(check_id)
        .transpose()
        .map_err(serde::de::Error::custom)
}

fn check_id(id: i64) -> Result<i64, String> {
    if id > 0 {
        Ok(id)
    } else {
        Err(format!("{id} is not a JOB id (JOB's ids are positive)"))
    }
}

#[cfg(test)]
mod tests {
    #[derive(Debug, serde::Deserialize)]
    struct Ids {
        #[serde(deserialize_with = "super::positive_id")]
        job: i64,
        #[serde(default, deserialize_with = "super::positive_id_opt")]
        step: Option<i64>,
    }

    #[test]
    fn ids_must_be_positive() {
        let ok: Ids = serde_json::from_str(r#"{"job": 7, "step": null}"#).expect("valid");
        assert_eq!((ok.job, ok.step), (7, None));
        for bad in [
            r#"{"job": 0}"#,
            r#"{"job": -5}"#,
            r#"{"job": 7, "step": 0}"#,
            r#"{"job": 7, "step": -1}"#,
        ] {
            let err = serde_json::from_str::<Ids>(bad).expect_err(bad);
            assert!(err.to_string().contains("is not a JOB id"), "{err}");
        }
    }
}
