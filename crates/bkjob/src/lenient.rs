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
